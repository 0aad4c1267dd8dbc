package connector

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
)

// plainBatch is what the hot path writes: no Return, no Ref.
func plainBatch(n int) []Write {
	ws := make([]Write, n)
	for i := range ws {
		ws[i] = Write{Table: "t", Op: Upsert, Key: change.Row{"id": int64(i)}, Values: change.Row{"a": "x", "b": int64(i), "c": nil}, Ref: i}
	}
	return ws
}

// TestNewResolverPlainBatchAllocatesNothing: a batch without Return and
// Ref costs the drivers no allocation and leaves them on their old path.
func TestNewResolverPlainBatchAllocatesNothing(t *testing.T) {
	ws := plainBatch(MaxBatchRows)
	var r *Resolver
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if r, err = NewResolver(ws); err != nil {
			t.Fatal(err)
		}
	})
	if r != nil || allocs != 0 {
		t.Errorf("NewResolver of a plain batch = %v with %v allocations, want nil with 0", r, allocs)
	}
}

// sim is a table store standing in for the rows a transaction wrote: it
// drives a Resolver the way a driver does, one write at a time, and
// counts the read-backs.
type sim struct {
	rows  map[string]change.Row // table \x00 id → row
	reads []int                 // keys per ReadBack call
}

func (s *sim) read(_ context.Context, table string, cols []string, keys []change.Row) ([]change.Row, error) {
	s.reads = append(s.reads, len(keys))
	out := make([]change.Row, len(keys))
	for i, k := range keys {
		if r, ok := s.rows[fmt.Sprint(table, "\x00", k["id"])]; ok {
			out[i] = change.Row{}
			for _, c := range cols {
				out[i][c] = r[c]
			}
		}
	}
	return out, nil
}

// apply writes ws through r: a generated "sid" for each new row, Values
// as resolved.
func (s *sim) apply(t *testing.T, ws []Write) map[int]change.Row {
	t.Helper()
	r, err := NewResolver(ws)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range ws {
		w := ws[i]
		if r != nil {
			got, err := r.Prepare(ctx, i, i+1, s.read)
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			w = got[0]
		}
		k := fmt.Sprint(w.Table, "\x00", w.Key["id"])
		switch w.Op {
		case Delete:
			delete(s.rows, k)
		case UpdateOnly:
			if s.rows[k] == nil {
				break
			}
			fallthrough
		default:
			row := s.rows[k]
			if row == nil {
				row = change.Row{"sid": fmt.Sprintf("g-%s", k)}
				s.rows[k] = row
			}
			for c, v := range w.Values {
				row[c] = v
			}
		}
		r.Wrote(i, i+1)
	}
	out, err := r.Finish(ctx, s.read)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ret(table string, id int64, values change.Row) Write {
	return Write{Table: table, Op: Upsert, Key: change.Row{"id": id}, Values: values, Return: []string{"sid"}}
}

func TestResolverGroupsReadBacks(t *testing.T) {
	t.Parallel()
	sid := func(w int) Ref { return Ref{Write: w, Column: "sid"} }
	tests := []struct {
		name  string
		ws    func() []Write
		reads []int // keys per read-back
	}{
		{"parents then children: one read", func() []Write {
			var ws []Write
			for i := int64(0); i < 50; i++ {
				ws = append(ws, ret("p", i, change.Row{"n": i}))
			}
			for i := int64(0); i < 50; i++ {
				ws = append(ws, Write{Table: "c", Op: Upsert, Key: change.Row{"id": i}, Values: change.Row{"p": sid(int(i))}})
			}
			return ws
		}, []int{50}},
		{"a chain: one read per link", func() []Write {
			ws := []Write{ret("c", 0, nil)}
			for i := int64(1); i < 4; i++ {
				ws = append(ws, ret("c", i, change.Row{"inv": sid(int(i - 1))}))
			}
			return ws
		}, []int{1, 1, 1, 1}},
		{"no consumer: one read at the end per table", func() []Write {
			return []Write{ret("p", 1, nil), ret("q", 1, nil), ret("p", 2, nil)}
		}, []int{2, 1}},
		{"a second write of a pending row reads it first", func() []Write {
			return []Write{ret("p", 1, change.Row{"n": "a"}), {Table: "p", Op: UpdateOnly, Key: change.Row{"id": int64(1)}, Values: change.Row{"n": "b"}}}
		}, []int{1}},
		{"another key of the table reads pending rows first", func() []Write {
			return []Write{ret("p", 1, nil), {Table: "p", Op: UpdateOnly, Key: change.Row{"code": int64(1)}, Values: change.Row{"n": "b"}}}
		}, []int{1}},
		{"other rows of the table wait", func() []Write {
			return []Write{ret("p", 1, nil), {Table: "p", Op: Upsert, Key: change.Row{"id": int64(2)}, Values: change.Row{"n": "b"}}, ret("p", 3, nil)}
		}, []int{2}},
		{"no Return: no read", func() []Write { return plainBatch(10) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &sim{rows: map[string]change.Row{}}
			s.apply(t, tc.ws())
			if fmt.Sprint(s.reads) != fmt.Sprint(tc.reads) {
				t.Errorf("read-backs of %v keys, want %v", s.reads, tc.reads)
			}
		})
	}
}

// TestResolverReadsTheRowAfterItsWrite: a row written twice reports, for
// each write, the row as that write left it.
func TestResolverReadsTheRowAfterItsWrite(t *testing.T) {
	t.Parallel()
	s := &sim{rows: map[string]change.Row{}}
	ws := []Write{
		{Table: "p", Op: Upsert, Key: change.Row{"id": int64(1)}, Values: change.Row{"n": "a"}, Return: []string{"n"}},
		{Table: "p", Op: Upsert, Key: change.Row{"id": int64(1)}, Values: change.Row{"n": "b"}, Return: []string{"n", "sid"}},
		{Table: "p", Op: Delete, Key: change.Row{"id": int64(1)}, Return: []string{"n"}},
	}
	got := s.apply(t, ws)
	want := map[int]change.Row{0: {"n": "a"}, 1: {"n": "b", "sid": "g-p\x001"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Returned = %v, want %v", got, want)
	}
}

func TestResolverRunEnd(t *testing.T) {
	t.Parallel()
	ws := []Write{
		ret("p", 0, nil),
		ret("p", 1, nil),
		{Table: "p", Op: Upsert, Key: change.Row{"id": int64(2)}, Values: change.Row{"x": Ref{Write: 0, Column: "sid"}}},
		ret("p", 3, nil),
		ret("p", 1, nil), // rewrites write 1's row
		ret("p", 5, nil),
	}
	r, err := NewResolver(ws)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ i, j, want int }{{0, 6, 2}, {1, 6, 4}, {2, 6, 6}, {3, 6, 6}, {2, 3, 3}} {
		if got := r.RunEnd(tc.i, tc.j); got != tc.want {
			t.Errorf("RunEnd(%d, %d) = %d, want %d", tc.i, tc.j, got, tc.want)
		}
	}
	var none *Resolver
	if got := none.RunEnd(0, 6); got != 6 {
		t.Errorf("nil RunEnd(0, 6) = %d, want 6", got)
	}
}

func TestResolverUnresolved(t *testing.T) {
	t.Parallel()
	ws := []Write{
		ret("p", 1, nil),
		{Table: "c", Op: Upsert, Key: change.Row{"id": int64(1)}, Values: change.Row{"p": Ref{Write: 0, Column: "sid"}}, Ref: 7},
	}
	r, err := NewResolver(ws)
	if err != nil {
		t.Fatal(err)
	}
	r.Failed(0)
	_, err = r.Prepare(context.Background(), 1, 2, (&sim{}).read)
	if !errors.Is(err, ErrRefUnresolved) {
		t.Fatalf("Prepare after the referenced write failed: %v, want ErrRefUnresolved", err)
	}
}

func BenchmarkNewResolverPlainBatch(b *testing.B) {
	ws := plainBatch(MaxBatchRows)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewResolver(ws); err != nil {
			b.Fatal(err)
		}
	}
}

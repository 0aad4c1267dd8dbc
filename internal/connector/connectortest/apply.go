package connectortest

import (
	"context"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// applyCols is the table most apply tests write to: a NOT NULL column
// without default, one with a default and a nullable one.
var applyCols = []column{
	{name: "id", kind: connector.KindInt, notNull: true},
	{name: "name", kind: connector.KindText, notNull: true},
	{name: "qty", kind: connector.KindInt, notNull: true, dflt: "5"},
	{name: "note", kind: connector.KindText},
}

// rows returns every row of table ordered by id.
func rows(ctx context.Context, t *testing.T, c connector.Connector, table string) []change.Row {
	t.Helper()
	rs, err := c.Scan(ctx, connector.ScanRequest{Table: table, OrderBy: []string{"id"}})
	if err != nil {
		t.Fatalf("Scan %s: %v", table, err)
	}
	return rs
}

func expectRows(ctx context.Context, t *testing.T, c connector.Connector, table string, cols []column, want ...change.Row) {
	t.Helper()
	got := rows(ctx, t, c, table)
	if len(got) != len(want) {
		t.Fatalf("%s holds %d rows, want %d:\n got %v\nwant %v", table, len(got), len(want), got, want)
	}
	kinds := kindsOf(cols)
	for i := range want {
		if d := diffRow(kinds, want[i], got[i]); d != "" {
			t.Errorf("%s row %d: %s", table, i, d)
		}
	}
}

func apply(ctx context.Context, t *testing.T, c connector.Connector, b connector.Batch) connector.Result {
	t.Helper()
	res, err := c.Apply(ctx, b)
	if err != nil {
		t.Fatalf("Apply(stream %q, position %v): %v", b.Stream, b.Position, err)
	}
	return res
}

func expectPosition(ctx context.Context, t *testing.T, c connector.Connector, stream string, want change.Position) {
	t.Helper()
	got, err := c.AppliedPosition(ctx, stream)
	if err != nil {
		t.Fatalf("AppliedPosition(%s): %v", stream, err)
	}
	if got.LSN != want.LSN || got.Sub != want.Sub || got.Token != want.Token {
		t.Errorf("AppliedPosition(%s) = %v, want %v", stream, got, want)
	}
}

func upsert(table string, id int64, values change.Row) connector.Write {
	return connector.Write{Table: table, Op: connector.Upsert, Key: change.Row{"id": id}, Values: values, Ref: int(id)}
}

func testApplyUpsert(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_apply", applyCols, []string{"id"})
	expectPosition(ctx, t, c, "s1", change.Position{})

	pos := change.Position{LSN: 10, Token: "tok-10"}
	res := apply(ctx, t, c, connector.Batch{Stream: "s1", Position: pos, Writes: []connector.Write{
		upsert("dw_apply", 1, change.Row{"name": "one"}),
		upsert("dw_apply", 2, change.Row{"name": "two", "qty": int64(20), "note": "n2"}),
	}})
	if res.Skipped || len(res.Failed) > 0 {
		t.Fatalf("Apply result = %+v, want applied", res)
	}
	expectRows(ctx, t, c, "dw_apply", applyCols,
		change.Row{"id": int64(1), "name": "one", "qty": int64(5), "note": nil},
		change.Row{"id": int64(2), "name": "two", "qty": int64(20), "note": "n2"})
	expectPosition(ctx, t, c, "s1", pos)

	// An upsert of an existing key changes only the given columns.
	apply(ctx, t, c, connector.Batch{Stream: "s1", Position: change.Position{LSN: 11}, Writes: []connector.Write{
		upsert("dw_apply", 1, change.Row{"note": "n1"}),
		upsert("dw_apply", 2, change.Row{"name": "deux", "note": nil}),
		upsert("dw_apply", 3, change.Row{"name": "three", "qty": int64(-3)}),
		// Key only: inserts with defaults, or leaves an existing row alone.
		{Table: "dw_apply", Op: connector.Upsert, Key: change.Row{"id": int64(3)}, Ref: 33},
	}})
	expectRows(ctx, t, c, "dw_apply", applyCols,
		change.Row{"id": int64(1), "name": "one", "qty": int64(5), "note": "n1"},
		change.Row{"id": int64(2), "name": "deux", "qty": int64(20), "note": nil},
		change.Row{"id": int64(3), "name": "three", "qty": int64(-3), "note": nil})
	expectPosition(ctx, t, c, "s1", change.Position{LSN: 11})

	// Zero position: initial sync writes record nothing.
	apply(ctx, t, c, connector.Batch{Stream: "s1", Writes: []connector.Write{
		upsert("dw_apply", 4, change.Row{"name": "four"}),
	}})
	expectPosition(ctx, t, c, "s1", change.Position{LSN: 11})
	if got := rows(ctx, t, c, "dw_apply"); len(got) != 4 {
		t.Errorf("after zero-position batch: %d rows, want 4", len(got))
	}
}

func testApplyUniqueKey(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	cols := []column{
		{name: "id", kind: connector.KindInt, notNull: true},
		{name: "code", kind: connector.KindInt, notNull: true},
		{name: "name", kind: connector.KindText},
	}
	s.create("dw_ukey", cols, []string{"id"}, []string{"code"})
	w := func(code int64, values change.Row) connector.Write {
		return connector.Write{Table: "dw_ukey", Op: connector.Upsert, Key: change.Row{"code": code}, Values: values, Ref: int(code)}
	}
	apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		w(100, change.Row{"id": int64(1), "name": "a"}),
		w(200, change.Row{"id": int64(2), "name": "b"}),
	}})
	apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 2}, Writes: []connector.Write{
		w(100, change.Row{"name": "a2"}),
		{Table: "dw_ukey", Op: connector.UpdateOnly, Key: change.Row{"code": int64(200)}, Values: change.Row{"name": "b2"}, Ref: 2},
		{Table: "dw_ukey", Op: connector.Delete, Key: change.Row{"code": int64(300)}, Ref: 3},
	}})
	expectRows(ctx, t, c, "dw_ukey", cols,
		change.Row{"id": int64(1), "code": int64(100), "name": "a2"},
		change.Row{"id": int64(2), "code": int64(200), "name": "b2"})
	apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 3}, Writes: []connector.Write{
		{Table: "dw_ukey", Op: connector.Delete, Key: change.Row{"code": int64(100)}, Ref: 1},
	}})
	expectRows(ctx, t, c, "dw_ukey", cols, change.Row{"id": int64(2), "code": int64(200), "name": "b2"})
}

func testApplyUpdateOnlyDelete(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_apply", applyCols, []string{"id"})
	s.insert("dw_apply", []string{"id", "name", "qty"}, int64(1), "one", int64(1))
	s.insert("dw_apply", []string{"id", "name", "qty"}, int64(2), "two", int64(2))
	res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		{Table: "dw_apply", Op: connector.UpdateOnly, Key: change.Row{"id": int64(1)}, Values: change.Row{"qty": int64(11), "note": "x"}, Ref: 1},
		// UpdateOnly never inserts.
		{Table: "dw_apply", Op: connector.UpdateOnly, Key: change.Row{"id": int64(9)}, Values: change.Row{"name": "nine"}, Ref: 9},
		{Table: "dw_apply", Op: connector.Delete, Key: change.Row{"id": int64(2)}, Ref: 2},
		// Deleting a missing row is not an error.
		{Table: "dw_apply", Op: connector.Delete, Key: change.Row{"id": int64(8)}, Ref: 8},
	}})
	if res.Skipped || len(res.Failed) > 0 {
		t.Fatalf("Apply result = %+v, want applied", res)
	}
	expectRows(ctx, t, c, "dw_apply", applyCols,
		change.Row{"id": int64(1), "name": "one", "qty": int64(11), "note": "x"})
}

func testApplyIdempotent(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_apply", applyCols, []string{"id"})
	batch := func(pos change.Position, name string) connector.Batch {
		return connector.Batch{Stream: "s1", Position: pos, Writes: []connector.Write{
			upsert("dw_apply", 1, change.Row{"name": name}),
		}}
	}
	current := func() string {
		t.Helper()
		rs := rows(ctx, t, c, "dw_apply")
		if len(rs) != 1 {
			t.Fatalf("dw_apply holds %d rows, want 1", len(rs))
		}
		name, _ := rs[0]["name"].(string)
		return name
	}
	steps := []struct {
		pos     change.Position
		name    string
		skipped bool
		want    string
	}{
		{change.Position{LSN: 100}, "a", false, "a"},
		{change.Position{LSN: 100}, "redelivered", true, "a"},
		{change.Position{LSN: 50}, "older", true, "a"},
		{change.Position{LSN: 100, Sub: 1}, "b", false, "b"},
		{change.Position{LSN: 100, Sub: 2}, "c", false, "c"},
		{change.Position{LSN: 100, Sub: 1}, "older sub", true, "c"},
		{change.Position{LSN: 100}, "older lsn", true, "c"},
		{change.Position{LSN: 101}, "d", false, "d"},
	}
	for i, st := range steps {
		res := apply(ctx, t, c, batch(st.pos, st.name))
		if res.Skipped != st.skipped {
			t.Errorf("step %d (position %v): Skipped = %v, want %v", i, st.pos, res.Skipped, st.skipped)
		}
		if got := current(); got != st.want {
			t.Errorf("step %d (position %v): name = %q, want %q", i, st.pos, got, st.want)
		}
	}
	expectPosition(ctx, t, c, "s1", change.Position{LSN: 101})

	// Streams are independent.
	res := apply(ctx, t, c, connector.Batch{Stream: "s2", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		upsert("dw_apply", 2, change.Row{"name": "other stream"}),
	}})
	if res.Skipped {
		t.Errorf("first batch of stream s2 was skipped")
	}
	expectPosition(ctx, t, c, "s2", change.Position{LSN: 1})
	expectPosition(ctx, t, c, "s1", change.Position{LSN: 101})
}

func testApplyIsolate(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_apply", applyCols, []string{"id"})
	pos := change.Position{LSN: 7}
	res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: true, Writes: []connector.Write{
		upsert("dw_apply", 1, change.Row{"name": "one"}),
		// NOT NULL violation.
		{Table: "dw_apply", Op: connector.Upsert, Key: change.Row{"id": int64(2)}, Values: change.Row{"name": nil}, Ref: 42},
		upsert("dw_apply", 3, change.Row{"name": "three"}),
		// Missing NOT NULL column without default on insert.
		{Table: "dw_apply", Op: connector.Upsert, Key: change.Row{"id": int64(4)}, Values: change.Row{"note": "no name"}, Ref: 43},
		upsert("dw_apply", 5, change.Row{"name": "five"}),
	}})
	if res.Skipped {
		t.Fatalf("isolated batch skipped")
	}
	var refs []int
	for _, f := range res.Failed {
		refs = append(refs, f.Ref)
		if f.Err == nil {
			t.Errorf("Failed ref %d has no error", f.Ref)
		}
	}
	if len(refs) != 2 || refs[0] != 42 || refs[1] != 43 {
		t.Errorf("Failed refs = %v, want [42 43]", refs)
	}
	expectRows(ctx, t, c, "dw_apply", applyCols,
		change.Row{"id": int64(1), "name": "one", "qty": int64(5), "note": nil},
		change.Row{"id": int64(3), "name": "three", "qty": int64(5), "note": nil},
		change.Row{"id": int64(5), "name": "five", "qty": int64(5), "note": nil})
	expectPosition(ctx, t, c, "s", pos)
}

func testApplyFailureRollsBack(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_apply", applyCols, []string{"id"})
	apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		upsert("dw_apply", 1, change.Row{"name": "one"}),
	}})
	_, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: 2}, Writes: []connector.Write{
		upsert("dw_apply", 1, change.Row{"name": "changed"}),
		upsert("dw_apply", 2, change.Row{"name": "two"}),
		{Table: "dw_apply", Op: connector.Upsert, Key: change.Row{"id": int64(3)}, Values: change.Row{"name": nil}, Ref: 3},
		upsert("dw_apply", 4, change.Row{"name": "four"}),
	}})
	if err == nil {
		t.Fatalf("Apply of a batch with a NOT NULL violation succeeded")
	}
	expectRows(ctx, t, c, "dw_apply", applyCols,
		change.Row{"id": int64(1), "name": "one", "qty": int64(5), "note": nil})
	expectPosition(ctx, t, c, "s", change.Position{LSN: 1})

	// The connector is still usable and the same position applies now.
	apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 2}, Writes: []connector.Write{
		upsert("dw_apply", 2, change.Row{"name": "two"}),
	}})
	expectPosition(ctx, t, c, "s", change.Position{LSN: 2})

	// A write to a missing table fails too.
	if _, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: 3}, Writes: []connector.Write{
		upsert("dw_missing", 1, change.Row{"name": "x"}),
	}}); err == nil {
		t.Errorf("Apply to a missing table succeeded")
	}
	expectPosition(ctx, t, c, "s", change.Position{LSN: 2})
}

func testApplyTooLarge(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_apply", applyCols, []string{"id"})
	writes := make([]connector.Write, connector.MaxBatchRows+1)
	for i := range writes {
		writes[i] = upsert("dw_apply", int64(i), change.Row{"name": "x"})
	}
	if _, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: writes}); err == nil {
		t.Errorf("Apply of %d writes succeeded, want an error above MaxBatchRows", len(writes))
	}
	expectPosition(ctx, t, c, "s", change.Position{})
	if got := rows(ctx, t, c, "dw_apply"); len(got) != 0 {
		t.Errorf("oversized batch wrote %d rows", len(got))
	}
	// Exactly MaxBatchRows is fine.
	res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: writes[:connector.MaxBatchRows]})
	if res.Skipped || len(res.Failed) > 0 {
		t.Fatalf("Apply result = %+v", res)
	}
	if n, err := c.Count(ctx, "dw_apply", nil); err != nil || n != connector.MaxBatchRows {
		t.Errorf("Count = %d, %v; want %d", n, err, connector.MaxBatchRows)
	}
}

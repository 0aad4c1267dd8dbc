package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStateSurvivesReopen: statuses, positions and progress are read back
// after the store is closed and opened again (an engine restart).
func TestStateSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetStatus(ctx, "customers", "Paused", "right", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSidePosition(ctx, "erp", change.Position{LSN: 42, Sub: 2, Token: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetInitProgress(ctx, "customers", "left", `["a"]`, false); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	st, err := s.MapStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st["customers"]; got.Status != "Paused" || got.Master != "right" || !got.SkipInitialSync {
		t.Fatalf("state = %+v", got)
	}
	if p, _ := s.SidePosition(ctx, "erp"); p != (change.Position{LSN: 42, Sub: 2, Token: "x"}) {
		t.Fatalf("position = %v", p)
	}
	if p, _ := s.SidePosition(ctx, "crm"); !p.IsZero() {
		t.Fatalf("unknown side position = %v", p)
	}
	if k, done, _ := s.InitProgress(ctx, "customers", "left"); k != `["a"]` || done {
		t.Fatalf("progress = %q %v", k, done)
	}
}

// TestParkedChangesStayInOrderPerKey: later changes to a parked key join
// its catch-up error, in order; other keys get their own.
func TestParkedChangesStayInOrderPerKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	for i, name := range []string{"A", "B", "C"} {
		qc := QueuedChange{Side: "erp", Change: change.Change{Table: "t", Op: change.Update, New: change.Row{"name": name}}, Position: change.Position{LSN: uint64(i + 1)}}
		if err := s.ParkChange(ctx, "m", "erp->crm", `["k1"]`, "DW3002", "lookup", qc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ParkChange(ctx, "m", "erp->crm", `["k2"]`, "DW3001", "rejected", QueuedChange{Side: "erp", Change: change.Change{Table: "t", Op: change.Insert}}); err != nil {
		t.Fatal(err)
	}
	errs, err := s.CatchUpErrors(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 2 || len(errs[0].Changes) != 3 || len(errs[1].Changes) != 1 {
		t.Fatalf("errors = %+v", errs)
	}
	for i, want := range []string{"A", "B", "C"} {
		if got := errs[0].Changes[i].Change.New["name"]; got != want {
			t.Fatalf("parked change %d = %v, want %s", i, got, want)
		}
	}
	keys, _ := s.ParkedKeys(ctx, "m")
	if !keys[`["k1"]`] || !keys[`["k2"]`] {
		t.Fatalf("parked keys = %v", keys)
	}
	if err := s.DeleteCatchUpError(ctx, errs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := s.CountErrors(ctx, "m"); n != 1 {
		t.Fatalf("catch-up errors after delete = %d", n)
	}
}

func TestShadowsInBulk(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	states := map[string][]byte{}
	for i := 0; i < 700; i++ { // more than one statement's worth
		states[fmt.Sprintf("k%d", i)] = []byte(fmt.Sprintf(`{"v":%d}`, i))
	}
	if err := s.SetShadows(ctx, "m", states); err != nil {
		t.Fatal(err)
	}
	// Replacing some, and another map's key of the same name.
	if err := s.SetShadows(ctx, "m", map[string][]byte{"k1": []byte(`{"v":"new"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetShadows(ctx, "other", map[string][]byte{"k2": []byte(`{"v":"other"}`)}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"missing"}
	for i := 0; i < 700; i++ {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	got, err := s.Shadows(ctx, "m", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 700 {
		t.Fatalf("got %d shadows, want 700", len(got))
	}
	if string(got["k1"]) != `{"v":"new"}` || string(got["k2"]) != `{"v":2}` || string(got["k699"]) != `{"v":699}` {
		t.Errorf("k1=%s k2=%s k699=%s", got["k1"], got["k2"], got["k699"])
	}
	if _, ok := got["missing"]; ok {
		t.Error("a key without a shadow came back")
	}
	one, err := s.Shadow(ctx, "other", "k2")
	if err != nil || string(one) != `{"v":"other"}` {
		t.Errorf("Shadow(other, k2) = %s, %v", one, err)
	}
}

// TestPairsRoundTrip: pairings come back with their values and types
// (decimals, times, NULLs, text with quotes and emoji), found by their
// index entries, across more than one statement's worth of rows; deleted
// keys are gone with their index entries, and the stored text is what
// encoding/json writes for a row.
func TestPairsRoundTrip(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	at := time.Date(2026, 12, 4, 10, 30, 0, 123456000, time.UTC)
	var put []Pair
	var refs [][]PairRef
	for i := 0; i < 450; i++ {
		p := Pair{Key: fmt.Sprintf(`["usmf","C%04d"]`, i), Rows: [2]change.Row{
			{"dataareaid": "usmf", "accountnum": fmt.Sprintf("C%04d", i), "amount": change.Decimal("12.3400"), "at": at, "note": nil},
			{"accountid": fmt.Sprintf("uuid-%d", i), "name": "O'Brien \"x\" 🎉", "n": int64(i)},
		}}
		put = append(put, p)
		refs = append(refs, []PairRef{{Side: 1, Cols: "accountid", Val: fmt.Sprintf("s:uuid-%d", i)}})
	}
	if err := s.PairsPut(ctx, "customers", put, refs, nil); err != nil {
		t.Fatal(err)
	}
	keys := []string{`["usmf","none"]`}
	for _, p := range put {
		keys = append(keys, p.Key)
	}
	got, err := s.PairsGet(ctx, "customers", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(put) {
		t.Fatalf("got %d pairings, want %d", len(got), len(put))
	}
	for _, p := range put {
		g := got[p.Key]
		for side := range 2 {
			if len(g.Rows[side]) != len(p.Rows[side]) {
				t.Fatalf("%s side %d: got %v, want %v", p.Key, side, g.Rows[side], p.Rows[side])
			}
			for c, v := range p.Rows[side] {
				if w, ok := v.(time.Time); ok {
					if gt, ok := g.Rows[side][c].(time.Time); !ok || !gt.Equal(w) {
						t.Errorf("%s %s: got %#v, want %v", p.Key, c, g.Rows[side][c], w)
					}
				} else if g.Rows[side][c] != v {
					t.Errorf("%s %s: got %#v, want %#v", p.Key, c, g.Rows[side][c], v)
				}
			}
		}
	}
	var left string
	if err := s.db.QueryRowContext(ctx, `SELECT left_row FROM pairs WHERE map='customers' AND key=?`, put[7].Key).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if want, _ := json.Marshal(put[7].Rows[0]); left != string(want) {
		t.Errorf("stored left row %s, want what encoding/json writes: %s", left, want)
	}
	found, err := s.PairsFind(ctx, "customers", 1, "accountid", []string{"s:uuid-3", "s:uuid-449", "s:nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found["s:uuid-3"] != put[3].Key || found["s:uuid-449"] != put[449].Key {
		t.Errorf("PairsFind = %v", found)
	}
	if err := s.PairsPut(ctx, "customers", nil, nil, []string{put[3].Key}); err != nil {
		t.Fatal(err)
	}
	got, err = s.PairsGet(ctx, "customers", []string{put[3].Key, put[4].Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[put[3].Key]; ok || len(got) != 1 {
		t.Errorf("after deleting %s: %v", put[3].Key, got)
	}
	if found, err := s.PairsFind(ctx, "customers", 1, "accountid", []string{"s:uuid-3"}); err != nil || len(found) != 0 {
		t.Errorf("deleted key still indexed: %v, %v", found, err)
	}
}

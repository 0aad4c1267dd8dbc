package store

import (
	"context"
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

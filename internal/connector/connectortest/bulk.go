package connectortest

import (
	"fmt"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// testApplyBulk writes a full batch of same-shaped upserts, the shape the
// initial sync writes and drivers may write in bulk: new rows, updates of
// existing rows, text that needs escaping, a key written twice (the later
// write wins) and one bad row, which alone fails.
func testApplyBulk(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_bulk", applyCols, []string{"id"})
	for id := int64(0); id < 10; id++ {
		s.insert("dw_bulk", []string{"id", "name", "qty", "note"}, id, "old", int64(1), "old note")
	}
	tricky := []any{"tab\there", "new\nline", `back\slash`, `\N`, "cr\rlf", "O'Brien \"q\"", "emoji 😀", "", nil}
	want := map[int64]change.Row{}
	var writes []connector.Write
	for id := int64(0); id < connector.MaxBatchRows-1; id++ {
		note := tricky[id%int64(len(tricky))]
		vals := change.Row{"name": fmt.Sprintf("n%d", id), "qty": id, "note": note}
		if id == 500 {
			vals["name"] = nil // NOT NULL violation
		}
		writes = append(writes, connector.Write{Table: "dw_bulk", Op: connector.Upsert, Key: change.Row{"id": id}, Values: vals, Ref: int(id)})
		if id != 500 {
			want[id] = change.Row{"id": id, "name": vals["name"], "qty": id, "note": note}
		}
	}
	// The same key again, later in the batch: the later write wins.
	writes = append(writes, connector.Write{Table: "dw_bulk", Op: connector.Upsert, Key: change.Row{"id": int64(3)}, Values: change.Row{"name": "again", "qty": int64(33), "note": nil}, Ref: 9999})
	want[3] = change.Row{"id": int64(3), "name": "again", "qty": int64(33), "note": nil}

	res := apply(ctx, t, c, connector.Batch{Stream: "bulk", Isolate: true, Writes: writes})
	if len(res.Failed) != 1 || res.Failed[0].Ref != 500 || res.Failed[0].Err == nil {
		t.Fatalf("Failed = %v, want only ref 500 with an error", res.Failed)
	}
	got := rows(ctx, t, c, "dw_bulk")
	if len(got) != len(want) {
		t.Fatalf("dw_bulk holds %d rows, want %d", len(got), len(want))
	}
	kinds := kindsOf(applyCols)
	for _, r := range got {
		id, _ := r["id"].(int64)
		if d := diffRow(kinds, want[id], r); d != "" {
			t.Errorf("row %d: %s", id, d)
		}
	}

	// The same batch with the bad row fixed, not isolated: every row lands.
	writes[500].Values = change.Row{"name": "fixed", "qty": int64(500), "note": nil}
	apply(ctx, t, c, connector.Batch{Stream: "bulk", Writes: writes})
	if n := len(rows(ctx, t, c, "dw_bulk")); n != connector.MaxBatchRows-1 {
		t.Errorf("after the second batch dw_bulk holds %d rows, want %d", n, connector.MaxBatchRows-1)
	}
}

// testApplyBulkInsert writes a run of InsertOnly writes, as the initial
// sync does into an empty table: rows whose key exists (an application
// inserted them meanwhile) are left alone and reported unmatched.
func testApplyBulkInsert(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("dw_bins", applyCols, []string{"id"})
	for _, id := range []int64{7, 50, 99} {
		s.insert("dw_bins", []string{"id", "name", "qty", "note"}, id, "app", int64(1), nil)
	}
	var writes []connector.Write
	for id := int64(0); id < 100; id++ {
		writes = append(writes, connector.Write{Table: "dw_bins", Op: connector.InsertOnly, Key: change.Row{"id": id},
			Values: change.Row{"name": fmt.Sprintf("n%d", id), "qty": id, "note": "tab\there"}, Ref: int(id)})
	}
	res := apply(ctx, t, c, connector.Batch{Stream: "bins", Isolate: true, Writes: writes})
	if len(res.Failed) != 0 {
		t.Fatalf("Failed = %v", res.Failed)
	}
	expectRefs(t, "Unmatched", res.Unmatched, 7, 50, 99)
	got := rows(ctx, t, c, "dw_bins")
	if len(got) != 100 {
		t.Fatalf("dw_bins holds %d rows, want 100", len(got))
	}
	for _, r := range got {
		id := r["id"].(int64)
		want := fmt.Sprintf("n%d", id)
		if id == 7 || id == 50 || id == 99 {
			want = "app"
		}
		if r["name"] != want {
			t.Errorf("row %d: name = %v, want %s", id, r["name"], want)
		}
	}
}

// testReadKeys checks KeyReader, for connectors that implement it: the
// rows of the keys that exist, whole, and nothing for the others.
func testReadKeys(t *testing.T, h Harness) {
	c, s := open(t, h)
	kr, ok := c.(connector.KeyReader)
	if !ok {
		t.Skip("the connector reads keys one by one")
	}
	ctx := ctxFor(t)
	cols := []column{
		{name: "tenant", kind: connector.KindInt, notNull: true},
		{name: "code", kind: connector.KindInt, notNull: true},
		{name: "val", kind: connector.KindText},
	}
	s.create("dw_keys", cols, []string{"tenant", "code"})
	for tenant := int64(1); tenant <= 3; tenant++ {
		for code := int64(-1); code <= 2; code++ {
			s.insert("dw_keys", names(cols), tenant, code, fmt.Sprintf("%d/%d it's 😀", tenant, code))
		}
	}
	keys := []change.Row{
		{"tenant": int64(1), "code": int64(-1)},
		{"tenant": int64(2), "code": int64(0)},
		{"tenant": int64(3), "code": int64(2)},
		{"tenant": int64(4), "code": int64(0)}, // no such row
		{"tenant": int64(1), "code": int64(7)},
	}
	got, err := kr.ReadKeys(ctx, "dw_keys", keys)
	if err != nil {
		t.Fatalf("ReadKeys: %v", err)
	}
	want := map[string]bool{"1/-1 it's 😀": true, "2/0 it's 😀": true, "3/2 it's 😀": true}
	if len(got) != len(want) {
		t.Fatalf("ReadKeys returned %d rows, want %d: %v", len(got), len(want), got)
	}
	for _, r := range got {
		v, _ := r["val"].(string)
		if !want[v] || r["tenant"] == nil || r["code"] == nil {
			t.Errorf("unexpected row %v", r)
		}
		delete(want, v)
	}
}

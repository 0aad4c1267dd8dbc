package connectortest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// The reference tests model what one source transaction brings: a new
// currency whose surrogate the target generates (dw_cur.id, a uuid
// default) and customers that reference it (dw_cust.cur) or each other
// (dw_cust.invoice, to another customer's generated uid).

var curCols = []column{
	{name: "code", kind: connector.KindInt, notNull: true},
	{name: "name", kind: connector.KindText, notNull: true},
}

var custCols = []column{
	{name: "id", kind: connector.KindInt, notNull: true},
	{name: "name", kind: connector.KindText, notNull: true},
	{name: "cur", kind: connector.KindUUID},
	{name: "invoice", kind: connector.KindUUID},
}

// createRefTables creates dw_cur, keyed by its generated id and unique by
// code, and dw_cust, keyed by id and unique by its generated uid.
func createRefTables(s schema) {
	s.t.Helper()
	gen := column{kind: connector.KindUUID, notNull: true, dflt: s.h.UUIDDefault()}
	cur, cust := gen, gen
	cur.name, cust.name = "id", "uid"
	s.create("dw_cur", append([]column{cur}, curCols...), []string{"id"}, []string{"code"})
	s.create("dw_cust", append(append([]column{}, custCols...), cust), []string{"id"}, []string{"uid"})
}

// refState is both tables as the connector scans them.
type refState struct {
	cur  map[int64]change.Row // by code
	cust map[int64]change.Row // by id
}

func readRefState(ctx context.Context, t *testing.T, c connector.Connector) refState {
	t.Helper()
	st := refState{cur: map[int64]change.Row{}, cust: map[int64]change.Row{}}
	curs, err := c.Scan(ctx, connector.ScanRequest{Table: "dw_cur", OrderBy: []string{"code"}})
	if err != nil {
		t.Fatalf("Scan dw_cur: %v", err)
	}
	for _, r := range curs {
		if r["id"] == nil {
			t.Fatalf("dw_cur row %v has no generated id", r)
		}
		st.cur[r["code"].(int64)] = r
	}
	custs, err := c.Scan(ctx, connector.ScanRequest{Table: "dw_cust", OrderBy: []string{"id"}})
	if err != nil {
		t.Fatalf("Scan dw_cust: %v", err)
	}
	for _, r := range custs {
		if r["uid"] == nil {
			t.Fatalf("dw_cust row %v has no generated uid", r)
		}
		st.cust[r["id"].(int64)] = r
	}
	return st
}

func curWrite(op connector.WriteOp, code int64, values change.Row, ref int) connector.Write {
	return connector.Write{Table: "dw_cur", Op: op, Key: change.Row{"code": code}, Values: values, Return: []string{"id"}, Ref: ref}
}

func custWrite(op connector.WriteOp, id int64, values change.Row, ref int) connector.Write {
	return connector.Write{Table: "dw_cust", Op: op, Key: change.Row{"id": id}, Values: values, Return: []string{"uid"}, Ref: ref}
}

// expectReturned compares Result.Returned with want, by write index.
func expectReturned(t *testing.T, got, want map[int]change.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("Returned holds %d writes, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g, ok := got[i]
		if !ok {
			t.Errorf("Returned has no write %d, want %v", i, w)
			continue
		}
		if len(g) != len(w) {
			t.Errorf("Returned[%d] = %v, want %v", i, g, w)
		}
		for k, v := range w {
			if g[k] != v {
				t.Errorf("Returned[%d][%s] = %v, want %v", i, k, g[k], v)
			}
		}
	}
}

// testApplyRefGenerated inserts a currency whose id the target generates
// and a customer that references it, in one batch.
func testApplyRefGenerated(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	pos := change.Position{LSN: 1}
	res := apply(ctx, t, c, connector.Batch{Stream: "r", Position: pos, Writes: []connector.Write{
		curWrite(connector.Upsert, 1, change.Row{"name": "euro"}, 1),
		{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(10)}, Values: change.Row{"name": "acme", "cur": connector.Ref{Write: 0, Column: "id"}}, Ref: 2},
	}})
	if res.Skipped || len(res.Failed) > 0 {
		t.Fatalf("Apply result = %+v, want applied", res)
	}
	st := readRefState(ctx, t, c)
	if len(st.cur) != 1 || len(st.cust) != 1 {
		t.Fatalf("tables hold %d currencies and %d customers, want 1 and 1", len(st.cur), len(st.cust))
	}
	id := st.cur[1]["id"]
	if got := st.cust[10]["cur"]; got != id {
		t.Errorf("customer 10 references currency %v, want the generated id %v", got, id)
	}
	expectReturned(t, res.Returned, map[int]change.Row{0: {"id": id}})
	expectPosition(ctx, t, c, "r", pos)
}

// testApplyRefInKey writes an order whose id the target generates and its
// lines, keyed by that id and a line number, in one batch: a line's key
// holds a reference. A later write of the same line by the same key
// updates it.
func testApplyRefInKey(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	s.create("dw_line", []column{
		{name: "cur", kind: connector.KindUUID, notNull: true},
		{name: "line", kind: connector.KindInt, notNull: true},
		{name: "qty", kind: connector.KindInt},
	}, []string{"cur", "line"})
	order := connector.Ref{Write: 0, Column: "id"}
	line := func(op connector.WriteOp, n, qty int64, ref int) connector.Write {
		return connector.Write{Table: "dw_line", Op: op, Key: change.Row{"cur": order, "line": n}, Values: change.Row{"qty": qty}, Ref: ref}
	}
	for _, isolate := range []bool{false, true} {
		res := apply(ctx, t, c, connector.Batch{Stream: "k", Isolate: isolate, Writes: []connector.Write{
			curWrite(connector.Upsert, 1, change.Row{"name": "order"}, 0),
			line(connector.Upsert, 1, 5, 1),
			line(connector.InsertOnly, 2, 6, 2),
			line(connector.UpdateOnly, 1, 7, 3),
		}})
		if len(res.Failed) > 0 {
			t.Fatalf("isolate %v: failed %+v", isolate, res.Failed)
		}
		st := readRefState(ctx, t, c)
		id := st.cur[1]["id"]
		rows, err := c.Scan(ctx, connector.ScanRequest{Table: "dw_line", OrderBy: []string{"cur", "line"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("isolate %v: lines = %v, want 2", isolate, rows)
		}
		for i, want := range []int64{7, 6} {
			if rows[i]["cur"] != id || rows[i]["qty"] != want {
				t.Errorf("isolate %v: line %d = %v, want order %v qty %d", isolate, i+1, rows[i], id, want)
			}
		}
	}
}

// testApplyRefCycles writes a self-reference and a mutual pair A→B→A as
// inserts with the reference unset, then updates that set it, isolated or
// not.
func testApplyRefCycles(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	uid := func(w int) connector.Ref { return connector.Ref{Write: w, Column: "uid"} }
	for n, isolate := range []bool{false, true} {
		base := int64(10 * n)
		writes := []connector.Write{
			custWrite(connector.Upsert, base+1, change.Row{"name": "self", "invoice": nil}, 0),
			{Table: "dw_cust", Op: connector.UpdateOnly, Key: change.Row{"id": base + 1}, Values: change.Row{"invoice": uid(0)}, Ref: 1},
			custWrite(connector.Upsert, base+2, change.Row{"name": "a"}, 2),
			custWrite(connector.InsertOnly, base+3, change.Row{"name": "b", "invoice": uid(2)}, 3),
			{Table: "dw_cust", Op: connector.UpdateOnly, Key: change.Row{"id": base + 2}, Values: change.Row{"invoice": uid(3)}, Ref: 4},
		}
		res := apply(ctx, t, c, connector.Batch{Stream: "r", Position: change.Position{LSN: uint64(n + 1)}, Isolate: isolate, Writes: writes})
		if res.Skipped || len(res.Failed) > 0 || len(res.Unmatched) > 0 {
			t.Fatalf("isolate %v: Apply result = %+v, want applied", isolate, res)
		}
		st := readRefState(ctx, t, c)
		self, a, b := st.cust[base+1], st.cust[base+2], st.cust[base+3]
		if self == nil || a == nil || b == nil {
			t.Fatalf("isolate %v: customers missing: %v", isolate, st.cust)
		}
		if self["invoice"] != self["uid"] {
			t.Errorf("isolate %v: self-reference invoice = %v, want its own uid %v", isolate, self["invoice"], self["uid"])
		}
		if a["invoice"] != b["uid"] || b["invoice"] != a["uid"] {
			t.Errorf("isolate %v: pair a=%v b=%v, want each to reference the other", isolate, a, b)
		}
		expectReturned(t, res.Returned, map[int]change.Row{
			0: {"uid": self["uid"]}, 2: {"uid": a["uid"]}, 3: {"uid": b["uid"]},
		})
	}
}

// testApplyRefIsolateFailure: a referenced write that fails or leaves no
// row fails its referencing write with a DW3002 row error naming it;
// the rest of the isolated batch commits.
func testApplyRefIsolateFailure(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	ref := func(w int) connector.Ref { return connector.Ref{Write: w, Column: "id"} }
	pos := change.Position{LSN: 5}
	res := apply(ctx, t, c, connector.Batch{Stream: "r", Position: pos, Isolate: true, Writes: []connector.Write{
		curWrite(connector.Upsert, 1, change.Row{"name": nil}, 100), // NOT NULL violation
		{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(10)}, Values: change.Row{"name": "orphan", "cur": ref(0)}, Ref: 101},
		curWrite(connector.Upsert, 2, change.Row{"name": "ok"}, 102),
		{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(11)}, Values: change.Row{"name": "fine", "cur": ref(2)}, Ref: 103},
		curWrite(connector.UpdateOnly, 9, change.Row{"name": "missing"}, 104), // leaves no row
		{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(12)}, Values: change.Row{"name": "dangling", "cur": ref(4)}, Ref: 105},
	}})
	var refs []int
	for _, f := range res.Failed {
		refs = append(refs, f.Ref)
	}
	expectRefs(t, "Failed", refs, 100, 101, 105)
	for _, f := range res.Failed {
		if f.Ref == 100 {
			continue
		}
		if !errors.Is(f.Err, connector.ErrRefUnresolved) || problem.CodeOf(f.Err) != problem.LookupUnresolved {
			t.Errorf("Failed ref %d: %v, want a %s error wrapping ErrRefUnresolved", f.Ref, f.Err, problem.LookupUnresolved)
			continue
		}
		want := map[int]string{101: "write 0 (ref 100)", 105: "write 4 (ref 104)"}[f.Ref]
		if !strings.Contains(f.Err.Error(), want) {
			t.Errorf("Failed ref %d: %q does not name the referenced %s", f.Ref, f.Err, want)
		}
	}
	st := readRefState(ctx, t, c)
	if len(st.cur) != 1 || st.cur[2] == nil || len(st.cust) != 1 || st.cust[11] == nil {
		t.Fatalf("after the isolated batch: currencies %v, customers %v; want only currency 2 and customer 11", st.cur, st.cust)
	}
	if st.cust[11]["cur"] != st.cur[2]["id"] {
		t.Errorf("customer 11 references %v, want currency 2's id %v", st.cust[11]["cur"], st.cur[2]["id"])
	}
	expectReturned(t, res.Returned, map[int]change.Row{2: {"id": st.cur[2]["id"]}})
	expectPosition(ctx, t, c, "r", pos)

	// The same in runs, as the initial sync writes: the bad parent is
	// split out of its run, its child out of the children's run.
	var ws []connector.Write
	for code := int64(100); code < 140; code++ {
		vals := change.Row{"name": fmt.Sprintf("c%d", code)}
		if code == 120 {
			vals["name"] = nil
		}
		ws = append(ws, curWrite(connector.Upsert, code, vals, int(code)))
	}
	for n := int64(100); n < 140; n++ {
		ws = append(ws, connector.Write{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": n}, Values: change.Row{"name": "k", "cur": ref(int(n - 100))}, Ref: int(1000 + n)})
	}
	res = apply(ctx, t, c, connector.Batch{Stream: "r", Position: change.Position{LSN: 6}, Isolate: true, Writes: ws})
	refs = refs[:0]
	for _, f := range res.Failed {
		refs = append(refs, f.Ref)
	}
	expectRefs(t, "Failed", refs, 120, 1120)
	st = readRefState(ctx, t, c)
	for n := int64(100); n < 140; n++ {
		cust, cur := st.cust[n], st.cur[n]
		if n == 120 {
			if cust != nil || cur != nil {
				t.Errorf("the failed currency 120 or its customer was written: %v %v", cur, cust)
			}
			continue
		}
		if cust == nil || cur == nil || cust["cur"] != cur["id"] {
			t.Errorf("customer %d = %v, currency %v; want it to reference the currency", n, cust, cur)
		}
	}
	if len(res.Returned) != 39 {
		t.Errorf("Returned holds %d writes, want the 39 currencies written", len(res.Returned))
	}
	pos = change.Position{LSN: 6}

	// Not isolated, an unresolved reference fails the whole batch.
	_, err := c.Apply(ctx, connector.Batch{Stream: "r", Position: change.Position{LSN: 7}, Writes: []connector.Write{
		curWrite(connector.Upsert, 3, change.Row{"name": "new"}, 200),
		curWrite(connector.UpdateOnly, 8, change.Row{"name": "missing"}, 201),
		{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(13)}, Values: change.Row{"name": "x", "cur": ref(1)}, Ref: 202},
	}})
	if !errors.Is(err, connector.ErrRefUnresolved) {
		t.Errorf("Apply of a batch with an unresolved reference: %v, want an error wrapping ErrRefUnresolved", err)
	}
	expectPosition(ctx, t, c, "r", pos)
	if after := readRefState(ctx, t, c); len(after.cur) != len(st.cur) || len(after.cust) != len(st.cust) {
		t.Errorf("the failed batch left rows: %d currencies and %d customers, want %d and %d", len(after.cur), len(after.cust), len(st.cur), len(st.cust))
	}
}

// testApplyRefReturned checks Returned for writes of existing and missing
// rows, and that a skipped batch returns nothing.
func testApplyRefReturned(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	s.insert("dw_cur", []string{"code", "name"}, int64(1), "old")
	s.insert("dw_cust", []string{"id", "name"}, int64(5), "five")
	batch := connector.Batch{Stream: "r", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		{Table: "dw_cur", Op: connector.Upsert, Key: change.Row{"code": int64(1)}, Values: change.Row{"name": "new"}, Return: []string{"id", "name"}, Ref: 0},
		// The key exists: unmatched, and returns the existing row.
		{Table: "dw_cur", Op: connector.InsertOnly, Key: change.Row{"code": int64(1)}, Values: change.Row{"name": "ignored"}, Return: []string{"id", "name"}, Ref: 1},
		custWrite(connector.Delete, 5, nil, 2),
		custWrite(connector.UpdateOnly, 6, change.Row{"name": "missing"}, 3),
		{Table: "dw_cur", Op: connector.Upsert, Key: change.Row{"code": int64(1)}, Values: change.Row{"name": "newer"}, Expect: change.Row{"name": "nope"}, Return: []string{"id"}, Ref: 4},
		{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(7)}, Values: change.Row{"name": "seven", "cur": connector.Ref{Write: 1, Column: "id"}}, Return: []string{"uid", "cur"}, Ref: 5},
	}}
	res := apply(ctx, t, c, batch)
	if res.Skipped || len(res.Failed) > 0 {
		t.Fatalf("Apply result = %+v, want applied", res)
	}
	expectRefs(t, "Unmatched", res.Unmatched, 1, 4)
	st := readRefState(ctx, t, c)
	id := st.cur[1]["id"]
	if st.cur[1]["name"] != "new" || len(st.cust) != 1 || st.cust[7] == nil || st.cust[7]["cur"] != id {
		t.Fatalf("after the batch: currencies %v, customers %v", st.cur, st.cust)
	}
	expectReturned(t, res.Returned, map[int]change.Row{
		0: {"id": id, "name": "new"},
		1: {"id": id, "name": "new"},
		5: {"uid": st.cust[7]["uid"], "cur": id},
	})
	again := apply(ctx, t, c, batch)
	if !again.Skipped || again.Returned != nil {
		t.Errorf("re-applied batch: Skipped %v, Returned %v; want skipped with nothing returned", again.Skipped, again.Returned)
	}
}

// testApplyRefMalformed: malformed references fail the batch before
// anything is written, even an isolated one.
func testApplyRefMalformed(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	plain := connector.Write{Table: "dw_cur", Op: connector.Upsert, Key: change.Row{"code": int64(1)}, Values: change.Row{"name": "euro"}, Ref: 0}
	cust := func(values change.Row) connector.Write {
		return connector.Write{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": int64(1)}, Values: values, Ref: 1}
	}
	cases := map[string][]connector.Write{
		"ref to a write without Return": {plain, cust(change.Row{"name": "a", "cur": connector.Ref{Write: 0, Column: "id"}})},
		"ref to a column not returned":  {curWrite(connector.Upsert, 1, change.Row{"name": "euro"}, 0), cust(change.Row{"name": "a", "cur": connector.Ref{Write: 0, Column: "name"}})},
		"ref to a later write":          {cust(change.Row{"name": "a", "cur": connector.Ref{Write: 1, Column: "id"}}), curWrite(connector.Upsert, 1, change.Row{"name": "euro"}, 0)},
		"ref to itself":                 {plain, custWrite(connector.Upsert, 1, change.Row{"name": "a", "invoice": connector.Ref{Write: 1, Column: "uid"}}, 1)},
		"ref in a key to a later write": {{Table: "dw_cust", Op: connector.Upsert, Key: change.Row{"id": connector.Ref{Write: 1, Column: "id"}}, Values: change.Row{"name": "a"}, Ref: 1},
			curWrite(connector.Upsert, 1, change.Row{"name": "euro"}, 0)},
	}
	for name, writes := range cases {
		_, err := c.Apply(ctx, connector.Batch{Stream: "r", Position: change.Position{LSN: 1}, Isolate: true, Writes: writes})
		if !errors.Is(err, connector.ErrBadRef) {
			t.Errorf("%s: Apply = %v, want an error wrapping ErrBadRef", name, err)
		}
	}
	st := readRefState(ctx, t, c)
	if len(st.cur) != 0 || len(st.cust) != 0 {
		t.Errorf("malformed batches wrote rows: currencies %v, customers %v", st.cur, st.cust)
	}
	expectPosition(ctx, t, c, "r", change.Position{})
}

// testApplyRefFullBatch writes MaxBatchRows writes mixing runs of parents,
// runs of children referencing them, interleaved parent and child, a
// chain, mutual pairs and self-references, isolated and not.
func testApplyRefFullBatch(t *testing.T, h Harness) {
	for _, isolate := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolate=%v", isolate), func(t *testing.T) {
			c, s := open(t, h)
			ctx := ctxFor(t)
			createRefTables(s)
			var ws []connector.Write
			add := func(w connector.Write) int {
				w.Ref = len(ws)
				ws = append(ws, w)
				return w.Ref
			}
			curAt := map[int64]int{}  // currency code → its write
			custAt := map[int64]int{} // customer id → its insert
			id := func(w int) connector.Ref { return connector.Ref{Write: w, Column: "id"} }
			uid := func(w int) connector.Ref { return connector.Ref{Write: w, Column: "uid"} }
			for code := int64(1); code <= 100; code++ { // a run of parents
				curAt[code] = add(curWrite(connector.Upsert, code, change.Row{"name": fmt.Sprintf("c%d", code)}, 0))
			}
			for n := int64(1); n <= 100; n++ { // a run of children
				custAt[n] = add(custWrite(connector.Upsert, n, change.Row{"name": fmt.Sprintf("k%d", n), "cur": id(curAt[n])}, 0))
			}
			for n := int64(101); n <= 200; n++ { // parent, child, parent, ...
				curAt[n] = add(curWrite(connector.InsertOnly, n, change.Row{"name": fmt.Sprintf("c%d", n)}, 0))
				custAt[n] = add(custWrite(connector.Upsert, n, change.Row{"name": fmt.Sprintf("k%d", n), "cur": id(curAt[n])}, 0))
			}
			for n := int64(201); n <= 400; n++ { // a chain
				custAt[n] = add(custWrite(connector.Upsert, n, change.Row{"name": fmt.Sprintf("k%d", n), "invoice": uid(custAt[n-1])}, 0))
			}
			for n := int64(1); n <= 100; n++ { // mutual pairs 1↔100, 2↔99, ...
				add(connector.Write{Table: "dw_cust", Op: connector.UpdateOnly, Key: change.Row{"id": n}, Values: change.Row{"invoice": uid(custAt[101-n])}})
			}
			for n := int64(301); n <= 400; n++ { // self-references
				add(connector.Write{Table: "dw_cust", Op: connector.UpdateOnly, Key: change.Row{"id": n}, Values: change.Row{"invoice": uid(custAt[n])}})
			}
			for code := int64(201); len(ws) < connector.MaxBatchRows; code++ { // parents nobody references yet
				curAt[code] = add(curWrite(connector.InsertOnly, code, change.Row{"name": fmt.Sprintf("c%d", code)}, 0))
			}
			res := apply(ctx, t, c, connector.Batch{Stream: "r", Position: change.Position{LSN: 1}, Isolate: isolate, Writes: ws})
			if res.Skipped || len(res.Failed) > 0 || len(res.Unmatched) > 0 {
				first := res.Failed[:min(3, len(res.Failed))]
				t.Fatalf("Apply: skipped %v, %d failed (first %v), unmatched %v; want all applied", res.Skipped, len(res.Failed), first, res.Unmatched)
			}
			st := readRefState(ctx, t, c)
			if len(st.cur) != len(curAt) || len(st.cust) != len(custAt) {
				t.Fatalf("tables hold %d currencies and %d customers, want %d and %d", len(st.cur), len(st.cust), len(curAt), len(custAt))
			}
			want := map[int]change.Row{}
			for code, w := range curAt {
				want[w] = change.Row{"id": st.cur[code]["id"]}
			}
			for n, w := range custAt {
				want[w] = change.Row{"uid": st.cust[n]["uid"]}
			}
			expectReturned(t, res.Returned, want)
			bad := 0
			for n, r := range st.cust {
				wantCur, wantInv := any(nil), any(nil)
				switch {
				case n <= 100:
					wantCur, wantInv = st.cur[n]["id"], st.cust[101-n]["uid"]
				case n <= 200:
					wantCur = st.cur[n]["id"]
				case n <= 300:
					wantInv = st.cust[n-1]["uid"]
				default:
					wantInv = r["uid"]
				}
				if r["cur"] != wantCur || r["invoice"] != wantInv {
					if bad++; bad <= 5 {
						t.Errorf("customer %d: cur %v invoice %v, want %v and %v", n, r["cur"], r["invoice"], wantCur, wantInv)
					}
				}
			}
			if bad > 5 {
				t.Errorf("%d customers reference the wrong rows", bad)
			}
		})
	}
	// A full batch of rows that all return: one group of MaxBatchRows keys.
	t.Run("all return", func(t *testing.T) {
		c, s := open(t, h)
		ctx := ctxFor(t)
		createRefTables(s)
		ws := make([]connector.Write, connector.MaxBatchRows)
		for i := range ws {
			ws[i] = curWrite(connector.Upsert, int64(i), change.Row{"name": "c"}, i)
		}
		res := apply(ctx, t, c, connector.Batch{Stream: "r", Position: change.Position{LSN: 1}, Writes: ws})
		st := readRefState(ctx, t, c)
		want := map[int]change.Row{}
		for i := range ws {
			want[i] = change.Row{"id": st.cur[int64(i)]["id"]}
		}
		expectReturned(t, res.Returned, want)
	})
}

// testApplyRepeatedUpdates writes a run of same-shaped updates that
// updates the same rows several times: each row ends with its last
// update, as if the writes were applied one by one in order (a bulk
// path must not take an arbitrary one of them).
func testApplyRepeatedUpdates(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	createRefTables(s)
	var ws []connector.Write
	for code := int64(1); code <= 3; code++ {
		ws = append(ws, curWrite(connector.Upsert, code, change.Row{"name": "start"}, len(ws)))
	}
	apply(ctx, t, c, connector.Batch{Stream: "u", Writes: ws})
	ws = ws[:0]
	for i := 0; i < 3*connector.MinBulkRun; i++ {
		code := int64(1 + i%3)
		ws = append(ws, connector.Write{Table: "dw_cur", Op: connector.UpdateOnly, Key: change.Row{"code": code}, Values: change.Row{"name": fmt.Sprintf("v%02d", i)}, Ref: i})
	}
	res := apply(ctx, t, c, connector.Batch{Stream: "u", Position: change.Position{LSN: 1}, Writes: ws})
	if len(res.Failed) > 0 {
		t.Fatalf("failed: %+v", res.Failed)
	}
	st := readRefState(ctx, t, c)
	last := 3*connector.MinBulkRun - 1
	for code := int64(1); code <= 3; code++ {
		want := ""
		for i := last; i >= 0; i-- {
			if int64(1+i%3) == code {
				want = fmt.Sprintf("v%02d", i)
				break
			}
		}
		if got := st.cur[code]["name"]; got != want {
			t.Errorf("row %d = %v, want its last update %s", code, got, want)
		}
	}
}

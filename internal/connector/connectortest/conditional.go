package connectortest

import (
	"fmt"
	"math/big"
	"reflect"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// casCols is the table of the conditional-write tests: applyCols plus a
// nullable decimal, for the Batch.Equal test.
var casCols = []column{
	{name: "id", kind: connector.KindInt, notNull: true},
	{name: "name", kind: connector.KindText, notNull: true},
	{name: "qty", kind: connector.KindInt, notNull: true, dflt: "5"},
	{name: "note", kind: connector.KindText},
	{name: "amount", kind: connector.KindDecimal},
}

// casRow is one row of dw_cas as Scan returns it (amount is always NULL
// except in the Equal test).
func casRow(id int64, name string, qty int64, note any) change.Row {
	return change.Row{"id": id, "name": name, "qty": qty, "note": note, "amount": nil}
}

// casSeed creates dw_cas with rows 1 (a, 1, NULL) and 2 (b, 2, 'x').
func casSeed(t *testing.T, h Harness) (connector.Connector, schema) {
	t.Helper()
	c, s := open(t, h)
	s.create("dw_cas", casCols, []string{"id"})
	s.insert("dw_cas", []string{"id", "name", "qty", "note"}, int64(1), "a", int64(1), nil)
	s.insert("dw_cas", []string{"id", "name", "qty", "note"}, int64(2), "b", int64(2), "x")
	return c, s
}

func cas(op connector.WriteOp, id int64, values, expect change.Row, ref int) connector.Write {
	return connector.Write{Table: "dw_cas", Op: op, Key: change.Row{"id": id}, Values: values, Expect: expect, Ref: ref}
}

// expectRefs checks a Refs list (Result.Unmatched) in batch order.
func expectRefs(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func expectNoFailures(t *testing.T, res connector.Result) {
	t.Helper()
	if res.Skipped {
		t.Fatalf("Apply result = %+v: skipped", res)
	}
	for _, f := range res.Failed {
		t.Errorf("write ref %d failed: %v", f.Ref, f.Err)
	}
}

// bothIsolations runs fn as two sub-tests, without and with Batch.Isolate.
func bothIsolations(t *testing.T, fn func(t *testing.T, isolate bool)) {
	t.Helper()
	for _, isolate := range []bool{false, true} {
		t.Run(fmt.Sprintf("Isolate=%v", isolate), func(t *testing.T) { fn(t, isolate) })
	}
}

// testApplyConditional pins down Write.Expect, InsertOnly, Batch.Equal and
// Result.Unmatched:
//   - Upsert: a missing row is inserted whatever Expect says; an existing
//     row is updated only if its Expect columns equal Expect.
//   - UpdateOnly, Delete: a missing row is left alone and not reported; an
//     existing row is written only if it matches Expect.
//   - InsertOnly: inserts a missing row; an existing row is left alone.
//   - A write not applied because the row did not match is listed in
//     Result.Unmatched (batch order), is not a failure (with or without
//     Isolate), writes nothing and does not stop the batch or its position.
//   - Expect sees the batch's earlier writes; a NULL expects a NULL.
//   - Values are compared with Batch.Equal(have, want), have being the
//     current value as Scan returns it; nil Equal is reflect.DeepEqual.
func testApplyConditional(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Upsert", testCondUpsert},
		{"UpdateOnly", testCondUpdateOnly},
		{"Delete", testCondDelete},
		{"Null", testCondNull},
		{"InsertOnly", testCondInsertOnly},
		{"Mixed", testCondMixed},
		{"Equal", testCondEqual},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func testCondUpsert(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		pos := change.Position{LSN: 1}
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: isolate, Writes: []connector.Write{
			// Matches (Expect on columns not in Values too).
			cas(connector.Upsert, 1, change.Row{"name": "a2"}, change.Row{"name": "a", "qty": int64(1)}, 1),
			// One column of two differs: not applied.
			cas(connector.Upsert, 2, change.Row{"name": "b2", "qty": int64(22)}, change.Row{"name": "b", "qty": int64(3)}, 2),
			// Missing row: inserted whatever Expect says.
			cas(connector.Upsert, 3, change.Row{"name": "c"}, change.Row{"name": "not c", "qty": int64(99)}, 3),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 2)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a2", 1, nil),
			casRow(2, "b", 2, "x"),
			casRow(3, "c", 5, nil))
		expectPosition(ctx, t, c, "s", pos)
	})
}

func testCondUpdateOnly(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		pos := change.Position{LSN: 1}
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: isolate, Writes: []connector.Write{
			cas(connector.UpdateOnly, 1, change.Row{"qty": int64(11), "note": "n"}, change.Row{"qty": int64(1)}, 1),
			cas(connector.UpdateOnly, 2, change.Row{"qty": int64(22)}, change.Row{"note": "y"}, 2),
			// Missing row: nothing, and not reported.
			cas(connector.UpdateOnly, 9, change.Row{"name": "nine"}, change.Row{"name": "nine"}, 9),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 2)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a", 11, "n"),
			casRow(2, "b", 2, "x"))
		expectPosition(ctx, t, c, "s", pos)
	})
}

func testCondDelete(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		pos := change.Position{LSN: 1}
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: isolate, Writes: []connector.Write{
			cas(connector.Delete, 1, nil, change.Row{"name": "a", "qty": int64(1)}, 1),
			cas(connector.Delete, 2, nil, change.Row{"name": "a"}, 2),
			// Missing row: nothing, and not reported.
			cas(connector.Delete, 9, nil, change.Row{"name": "nine"}, 9),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 2)
		expectRows(ctx, t, c, "dw_cas", casCols, casRow(2, "b", 2, "x"))
		expectPosition(ctx, t, c, "s", pos)
	})
}

func testCondNull(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, s := casSeed(t, h)
		ctx := ctxFor(t)
		s.insert("dw_cas", []string{"id", "name", "qty"}, int64(3), "c", int64(3))
		s.insert("dw_cas", []string{"id", "name", "qty"}, int64(4), "d", int64(4))
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Isolate: isolate, Writes: []connector.Write{
			// NULL expected, NULL found: applied.
			cas(connector.Upsert, 1, change.Row{"note": "n1"}, change.Row{"note": nil}, 1),
			// NULL expected, 'x' found: not applied.
			cas(connector.UpdateOnly, 2, change.Row{"note": nil}, change.Row{"note": nil}, 2),
			// 'x' expected, NULL found: not applied.
			cas(connector.Delete, 3, nil, change.Row{"note": "x"}, 3),
			// NULL expected among other columns, NULL found: applied.
			cas(connector.Delete, 4, nil, change.Row{"name": "d", "note": nil}, 4),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 2, 3)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a", 1, "n1"),
			casRow(2, "b", 2, "x"),
			casRow(3, "c", 3, nil))
	})
}

func testCondInsertOnly(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Isolate: isolate, Writes: []connector.Write{
			// Absent: inserted with Key, Values and defaults.
			cas(connector.InsertOnly, 3, change.Row{"name": "c", "note": "n3"}, nil, 3),
			// Present: not applied.
			cas(connector.InsertOnly, 1, change.Row{"name": "a2", "qty": int64(11)}, nil, 1),
			// Inserted earlier in the same batch: present now.
			cas(connector.InsertOnly, 3, change.Row{"name": "c2"}, nil, 33),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 1, 33)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a", 1, nil),
			casRow(2, "b", 2, "x"),
			casRow(3, "c", 5, "n3"))
		expectPosition(ctx, t, c, "s", change.Position{LSN: 1})

		// A batch whose writes all go unmatched still records its position,
		// so redelivering it is skipped.
		pos := change.Position{LSN: 2}
		res = apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: isolate, Writes: []connector.Write{
			cas(connector.InsertOnly, 2, change.Row{"name": "b2"}, nil, 2),
			cas(connector.UpdateOnly, 1, change.Row{"name": "a2"}, change.Row{"name": "zzz"}, 1),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 2, 1)
		expectPosition(ctx, t, c, "s", pos)
		res = apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: isolate, Writes: []connector.Write{
			cas(connector.InsertOnly, 2, change.Row{"name": "b2"}, nil, 2),
		}})
		if !res.Skipped {
			t.Errorf("redelivered batch at %v: Skipped = false, want true", pos)
		}
		expectRefs(t, "Unmatched of a skipped batch", res.Unmatched)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a", 1, nil),
			casRow(2, "b", 2, "x"),
			casRow(3, "c", 5, "n3"))
	})
}

func testCondMixed(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		pos := change.Position{LSN: 5}
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: isolate, Writes: []connector.Write{
			upsert("dw_cas", 1, change.Row{"name": "a1"}),
			// Sees the unconditional write before it.
			cas(connector.UpdateOnly, 1, change.Row{"qty": int64(10)}, change.Row{"name": "a1"}, 11),
			// Expects the value the row had before the batch: not applied.
			cas(connector.Upsert, 1, change.Row{"note": "stale"}, change.Row{"name": "a"}, 12),
			cas(connector.Upsert, 2, change.Row{"note": "y"}, change.Row{"note": "z"}, 21),
			// An unconditional write of a row whose conditional write did
			// not apply.
			upsert("dw_cas", 2, change.Row{"qty": int64(20)}),
			{Table: "dw_cas", Op: connector.UpdateOnly, Key: change.Row{"id": int64(2)}, Values: change.Row{"name": "b2"}, Ref: 22},
			upsert("dw_cas", 3, change.Row{"name": "c"}),
			cas(connector.InsertOnly, 4, change.Row{"name": "d"}, nil, 4),
			cas(connector.Delete, 3, nil, change.Row{"name": "c", "qty": int64(5)}, 31),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched", res.Unmatched, 12, 21)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a1", 10, nil),
			casRow(2, "b2", 20, "x"),
			casRow(4, "d", 5, nil))
		expectPosition(ctx, t, c, "s", pos)
	})

	// With Isolate, failures and unmatched writes are reported apart and
	// neither stops the rest of the batch.
	t.Run("IsolateWithFailures", func(t *testing.T) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		pos := change.Position{LSN: 6}
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: pos, Isolate: true, Writes: []connector.Write{
			cas(connector.UpdateOnly, 1, change.Row{"name": "a2"}, change.Row{"name": "zzz"}, 1),
			// NOT NULL violation on a matching row.
			cas(connector.UpdateOnly, 2, change.Row{"name": nil}, change.Row{"name": "b"}, 2),
			// Missing NOT NULL column without default on insert.
			cas(connector.InsertOnly, 3, change.Row{"note": "no name"}, nil, 3),
			cas(connector.InsertOnly, 4, change.Row{"name": "d"}, nil, 4),
			cas(connector.Upsert, 2, change.Row{"qty": int64(22)}, change.Row{"name": "b"}, 5),
			cas(connector.InsertOnly, 2, change.Row{"name": "b3"}, nil, 6),
		}})
		if res.Skipped {
			t.Fatalf("isolated batch skipped")
		}
		var failed []int
		for _, f := range res.Failed {
			failed = append(failed, f.Ref)
			if f.Err == nil {
				t.Errorf("Failed ref %d has no error", f.Ref)
			}
		}
		expectRefs(t, "Failed refs", failed, 2, 3)
		expectRefs(t, "Unmatched", res.Unmatched, 1, 6)
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a", 1, nil),
			casRow(2, "b", 22, "x"),
			casRow(4, "d", 5, nil))
		expectPosition(ctx, t, c, "s", pos)
	})

	// Without Isolate, a failure rolls back the whole batch, conditional
	// writes included.
	t.Run("FailureRollsBack", func(t *testing.T) {
		c, _ := casSeed(t, h)
		ctx := ctxFor(t)
		_, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: 7}, Writes: []connector.Write{
			cas(connector.UpdateOnly, 1, change.Row{"name": "a2"}, change.Row{"name": "a"}, 1),
			cas(connector.InsertOnly, 3, change.Row{"name": "c"}, nil, 3),
			cas(connector.Upsert, 2, change.Row{"name": nil}, change.Row{"name": "b"}, 2),
		}})
		if err == nil {
			t.Fatalf("Apply of a batch with a NOT NULL violation succeeded")
		}
		expectRows(ctx, t, c, "dw_cas", casCols,
			casRow(1, "a", 1, nil),
			casRow(2, "b", 2, "x"))
		expectPosition(ctx, t, c, "s", change.Position{})
	})
}

// numericEqual treats numbers of any canonical type (int64, float64,
// Decimal) as equal when their values are, and compares everything else
// with reflect.DeepEqual.
func numericEqual(have, want any) bool {
	a, ok1 := numericRat(have)
	b, ok2 := numericRat(want)
	if ok1 && ok2 {
		return a.Cmp(b) == 0
	}
	return reflect.DeepEqual(have, want)
}

func numericRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	case change.Decimal:
		return new(big.Rat).SetString(string(x))
	}
	return nil, false
}

func testCondEqual(t *testing.T, h Harness) {
	bothIsolations(t, func(t *testing.T, isolate bool) {
		c, s := casSeed(t, h)
		ctx := ctxFor(t)
		s.insert("dw_cas", []string{"id", "name", "qty", "amount"}, int64(3), "c", int64(1), "1.00")
		s.insert("dw_cas", []string{"id", "name", "qty", "amount"}, int64(4), "d", int64(1), "1.00")
		var calls int
		equal := func(have, want any) bool {
			calls++
			// have is the current value decoded as Scan decodes it; the
			// Expect columns here are qty (int) and amount (decimal).
			if checkCanonical(connector.KindInt, have) != nil && checkCanonical(connector.KindDecimal, have) != nil {
				t.Errorf("Equal called with have = %s, not a canonical int or decimal", show(have))
			}
			return numericEqual(have, want)
		}

		// Without Equal, reflect.DeepEqual: int64(1) is not Decimal("1.00").
		res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Isolate: isolate, Writes: []connector.Write{
			cas(connector.UpdateOnly, 1, change.Row{"note": "deep"}, change.Row{"qty": change.Decimal("1.00")}, 1),
			cas(connector.UpdateOnly, 2, change.Row{"note": "deep"}, change.Row{"qty": int64(2)}, 2),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched without Equal", res.Unmatched, 1)

		// With a numeric Equal, both ways round.
		res = apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 2}, Isolate: isolate, Equal: equal, Writes: []connector.Write{
			cas(connector.UpdateOnly, 1, change.Row{"note": "numeric"}, change.Row{"qty": change.Decimal("1.00")}, 1),
			cas(connector.Upsert, 3, change.Row{"note": "numeric"}, change.Row{"amount": int64(1)}, 3),
			cas(connector.Delete, 4, nil, change.Row{"amount": int64(2)}, 4),
		}})
		expectNoFailures(t, res)
		expectRefs(t, "Unmatched with Equal", res.Unmatched, 4)
		if calls < 3 {
			t.Errorf("Batch.Equal called %d times, want at least 3 (once per Expect column)", calls)
		}
		rs := rows(ctx, t, c, "dw_cas")
		if len(rs) != 4 {
			t.Fatalf("dw_cas holds %d rows, want 4: %v", len(rs), rs)
		}
		for i, want := range []any{"numeric", "deep", "numeric", nil} {
			if got := rs[i]["note"]; got != want {
				t.Errorf("row %v: note = %s, want %s", rs[i]["id"], show(got), show(want))
			}
		}
		if !numericEqual(rs[3]["amount"], change.Decimal("1")) {
			t.Errorf("row 4: amount = %s, want 1", show(rs[3]["amount"]))
		}
	})
}

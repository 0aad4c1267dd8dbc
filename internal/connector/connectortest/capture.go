package connectortest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// captureWait bounds how long the suite waits for one transaction.
const captureWait = 30 * time.Second

// reader reads a capturer and checks the stream-wide rules: positions
// strictly increase, transactions are not empty, changes only name watched
// tables and carry canonical values.
type reader struct {
	t       *testing.T
	cp      connector.Capturer
	watched map[string]map[string]connector.Kind // table → column kinds
	last    change.Position
	txs     []change.Tx
	closed  bool
}

func startCapture(ctx context.Context, t *testing.T, c connector.Connector, from change.Position, tables map[string][]column) *reader {
	t.Helper()
	opts := connector.CaptureOptions{From: from}
	watched := map[string]map[string]connector.Kind{}
	for name, cols := range tables {
		opts.Tables = append(opts.Tables, name)
		opts.FullOld = append(opts.FullOld, name)
		watched[name] = kindsOf(cols)
	}
	cp, err := c.Capture(ctx, opts)
	if err != nil {
		t.Fatalf("Capture(from %v): %v", from, err)
	}
	r := &reader{t: t, cp: cp, watched: watched, last: from}
	t.Cleanup(func() {
		if !r.closed {
			_ = cp.Close()
		}
	})
	return r
}

func (r *reader) close() {
	r.t.Helper()
	r.closed = true
	if err := r.cp.Close(); err != nil {
		r.t.Errorf("capturer Close: %v", err)
	}
}

// next returns the next transaction, failing the test after captureWait.
func (r *reader) next() change.Tx {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), captureWait)
	defer cancel()
	tx, err := r.cp.Next(ctx)
	if err != nil {
		r.t.Fatalf("Next after %v: %v (received so far: %s)", r.last, err, describeTxs(r.txs))
	}
	if len(tx.Changes) == 0 {
		r.t.Errorf("Next returned an empty transaction at %v", tx.Position)
	}
	if !r.last.Less(tx.Position) {
		r.t.Errorf("transaction position %v is not after the previous %v", tx.Position, r.last)
	}
	if tx.CommitTime.IsZero() {
		r.t.Errorf("transaction at %v has no CommitTime", tx.Position)
	}
	for i, ch := range tx.Changes {
		kinds, ok := r.watched[ch.Table]
		if !ok {
			r.t.Errorf("tx %v change %d names table %q that is not watched", tx.Position, i, ch.Table)
			continue
		}
		for _, row := range []change.Row{ch.Old, ch.New} {
			for col, v := range row {
				k, ok := kinds[col]
				if !ok {
					r.t.Errorf("tx %v change %d: unknown column %s.%s", tx.Position, i, ch.Table, col)
				} else if err := checkCanonical(k, v); err != nil {
					r.t.Errorf("tx %v change %d: %s.%s: %v", tx.Position, i, ch.Table, col, err)
				}
			}
		}
	}
	r.last = tx.Position
	r.txs = append(r.txs, tx)
	return tx
}

// until reads transactions until one holds a change for which stop is
// true, and returns the transactions read by this call.
func (r *reader) until(stop func(change.Change) bool) []change.Tx {
	r.t.Helper()
	var out []change.Tx
	for {
		tx := r.next()
		out = append(out, tx)
		for _, ch := range tx.Changes {
			if stop(ch) {
				return out
			}
		}
	}
}

// isRow matches a change of table whose key column id has value id.
func isRow(table string, op change.Op, id int64) func(change.Change) bool {
	return func(ch change.Change) bool {
		if ch.Table != table || ch.Op != op {
			return false
		}
		row := ch.New
		if op == change.Delete {
			row = ch.Old
		}
		return row["id"] == id
	}
}

func flatten(txs []change.Tx) []change.Change {
	var out []change.Change
	for _, tx := range txs {
		out = append(out, tx.Changes...)
	}
	return out
}

func describeTxs(txs []change.Tx) string {
	var b strings.Builder
	for _, tx := range txs {
		fmt.Fprintf(&b, "[tx %v:", tx.Position)
		for _, ch := range tx.Changes {
			fmt.Fprintf(&b, " %s %s old=%v new=%v;", ch.Op, ch.Table, ch.Old, ch.New)
		}
		b.WriteString("] ")
	}
	return b.String()
}

// expectChanges compares changes with want: same tables and ops in the
// same order, New equal, and Old equal when it is complete (the key
// columns otherwise).
func (r *reader) expectChanges(got, want []change.Change) {
	r.t.Helper()
	if len(got) != len(want) {
		r.t.Fatalf("got %d changes, want %d: %s", len(got), len(want), describeTxs([]change.Tx{{Changes: got}}))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Table != w.Table || g.Op != w.Op {
			r.t.Errorf("change %d: %s %s, want %s %s", i, g.Op, g.Table, w.Op, w.Table)
			continue
		}
		kinds := r.watched[w.Table]
		if w.Op == change.Truncate {
			if g.Old != nil || g.New != nil {
				r.t.Errorf("change %d: a truncate carries rows: Old %v New %v", i, g.Old, g.New)
			}
			continue
		}
		if w.Op != change.Delete {
			if d := diffRow(kinds, w.New, g.New); d != "" {
				r.t.Errorf("change %d (%s %s) New: %s", i, w.Op, w.Table, d)
			}
		} else if g.New != nil {
			r.t.Errorf("change %d: delete has New %v", i, g.New)
		}
		if w.Op == change.Insert {
			if g.Old != nil {
				r.t.Errorf("change %d: insert has Old %v", i, g.Old)
			}
			continue
		}
		if !g.OldComplete {
			r.t.Errorf("change %d (%s %s): OldComplete is false although the table is in FullOld", i, w.Op, w.Table)
		}
		if d := diffRow(kinds, w.Old, g.Old); d != "" {
			r.t.Errorf("change %d (%s %s) Old: %s", i, w.Op, w.Table, d)
		}
	}
}

// txOf returns the index of the transaction holding the first change for
// which match is true, or -1.
func txOf(txs []change.Tx, match func(change.Change) bool) int {
	for i, tx := range txs {
		for _, ch := range tx.Changes {
			if match(ch) {
				return i
			}
		}
	}
	return -1
}

var capCols = []column{
	{name: "id", kind: connector.KindInt, notNull: true},
	{name: "name", kind: connector.KindText},
	{name: "qty", kind: connector.KindInt},
}

func capRow(id int64, name, qty any) change.Row {
	return change.Row{"id": id, "name": name, "qty": qty}
}

func testCaptureOrder(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("cap_a", capCols, []string{"id"})
	s.create("cap_b", capCols, []string{"id"})
	s.create("cap_x", capCols, []string{"id"})
	cols := names(capCols)
	// Changes before capture starts are not reported.
	s.insert("cap_a", cols, int64(100), "before", int64(0))

	r := startCapture(ctx, t, c, change.Position{}, map[string][]column{"cap_a": capCols, "cap_b": capCols})
	upd := func(table string) string {
		return fmt.Sprintf("UPDATE %s SET %s = %s, %s = %s WHERE %s = %s", s.q(table), s.q("name"), h.Placeholder(1),
			s.q("qty"), h.Placeholder(2), s.q("id"), h.Placeholder(3))
	}
	del := func(table string) string {
		return fmt.Sprintf("DELETE FROM %s WHERE %s = %s", s.q(table), s.q("id"), h.Placeholder(1))
	}

	s.insert("cap_a", cols, int64(1), "one", int64(10))
	s.exec(upd("cap_a"), "uno", nil, int64(1))
	s.tx(func(exec func(string, ...any)) {
		exec(s.insertSQL("cap_a", cols), int64(2), "two", int64(20))
		exec(s.insertSQL("cap_b", cols), int64(1), "b1", int64(1))
		exec(s.insertSQL("cap_x", cols), int64(1), "unwatched", int64(1))
		exec(upd("cap_a"), "two", int64(21), int64(2))
		exec(del("cap_a"), int64(1))
	})
	s.insert("cap_x", cols, int64(2), "unwatched", int64(2))
	s.exec(del("cap_a"), int64(2))

	txs := r.until(isRow("cap_a", change.Delete, 2))
	r.expectChanges(flatten(txs), []change.Change{
		{Table: "cap_a", Op: change.Insert, New: capRow(1, "one", int64(10))},
		{Table: "cap_a", Op: change.Update, Old: capRow(1, "one", int64(10)), New: capRow(1, "uno", nil)},
		{Table: "cap_a", Op: change.Insert, New: capRow(2, "two", int64(20))},
		{Table: "cap_b", Op: change.Insert, New: capRow(1, "b1", int64(1))},
		{Table: "cap_a", Op: change.Update, Old: capRow(2, "two", int64(20)), New: capRow(2, "two", int64(21))},
		{Table: "cap_a", Op: change.Delete, Old: capRow(1, "uno", nil)},
		{Table: "cap_a", Op: change.Delete, Old: capRow(2, "two", int64(21))},
	})
	// Invariant under test: a source transaction is never split.
	first := txOf(txs, isRow("cap_a", change.Insert, 2))
	for _, m := range []func(change.Change) bool{isRow("cap_b", change.Insert, 1), isRow("cap_a", change.Update, 2), isRow("cap_a", change.Delete, 1)} {
		if i := txOf(txs, m); i != first {
			t.Errorf("the multi-statement transaction arrived split across transactions %d and %d: %s", first, i, describeTxs(txs))
		}
	}

	// A large application transaction arrives whole too.
	s.tx(func(exec func(string, ...any)) {
		for i := int64(0); i < 300; i++ {
			exec(s.insertSQL("cap_b", cols), 1000+i, "bulk", i)
		}
	})
	s.insert("cap_a", cols, int64(3), "after bulk", nil)
	txs = r.until(isRow("cap_a", change.Insert, 3))
	got := flatten(txs)
	if len(got) != 301 {
		t.Fatalf("bulk: got %d changes, want 301", len(got))
	}
	bulk := txOf(txs, isRow("cap_b", change.Insert, 1000))
	for i := int64(0); i < 300; i++ {
		if got[i].Op != change.Insert || got[i].New["id"] != 1000+i {
			t.Fatalf("bulk change %d = %s %v, want insert id %d", i, got[i].Op, got[i].New, 1000+i)
		}
		if j := txOf(txs, isRow("cap_b", change.Insert, 1000+i)); j != bulk {
			t.Fatalf("bulk transaction split across transactions %d and %d", bulk, j)
		}
	}
}

func testCaptureValues(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	cols, want := valueTable(s, "dw_values")
	s.create("dw_values_copy", cols, []string{"id"})
	var writes []connector.Write
	for _, r := range want {
		vals := r.Clone()
		delete(vals, "id")
		writes = append(writes, connector.Write{Table: "dw_values", Op: connector.Upsert, Key: change.Row{"id": r["id"]}, Values: vals, Ref: 1})
	}
	apply(ctx, t, c, connector.Batch{Stream: "v", Writes: writes})

	r := startCapture(ctx, t, c, change.Position{}, map[string][]column{"dw_values_copy": cols})
	// The application copies the rows the engine wrote, so capture sees
	// every sample value as the database stores it.
	s.exec(fmt.Sprintf("INSERT INTO %s SELECT * FROM %s", s.q("dw_values_copy"), s.q("dw_values")))
	s.exec(fmt.Sprintf("UPDATE %s SET %s = %s + 100", s.q("dw_values_copy"), s.q("id"), s.q("id")))
	s.exec(fmt.Sprintf("DELETE FROM %s", s.q("dw_values_copy")))

	var wantCh []change.Change
	for _, w := range want {
		wantCh = append(wantCh, change.Change{Table: "dw_values_copy", Op: change.Insert, New: w})
	}
	var updates, deletes []change.Change
	for _, w := range want {
		moved := w.Clone()
		moved["id"] = w["id"].(int64) + 100
		updates = append(updates, change.Change{Table: "dw_values_copy", Op: change.Update, Old: w, New: moved})
		deletes = append(deletes, change.Change{Table: "dw_values_copy", Op: change.Delete, Old: moved})
	}
	last := want[len(want)-1]["id"].(int64) + 100
	txs := r.until(isRow("dw_values_copy", change.Delete, last))
	got := flatten(txs)
	if len(got) != 3*len(want) {
		t.Fatalf("got %d changes, want %d: %s", len(got), 3*len(want), describeTxs(txs))
	}
	// Statement-level order of rows within one statement is not defined:
	// match by key.
	byID := func(chs []change.Change, op change.Op) map[int64]change.Change {
		m := map[int64]change.Change{}
		for _, ch := range chs {
			row := ch.New
			if op == change.Delete {
				row = ch.Old
			}
			if ch.Op == op {
				id, _ := row["id"].(int64)
				m[id] = ch
			}
		}
		return m
	}
	n := len(want)
	for i, part := range [][]change.Change{wantCh, updates, deletes} {
		gotPart := got[i*n : (i+1)*n]
		op := part[0].Op
		gm := byID(gotPart, op)
		var ordered []change.Change
		for _, w := range part {
			row := w.New
			if op == change.Delete {
				row = w.Old
			}
			ordered = append(ordered, gm[row["id"].(int64)])
		}
		r.expectChanges(ordered, part)
	}
}

func testCaptureEcho(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("cap_a", capCols, []string{"id"})
	r := startCapture(ctx, t, c, change.Position{}, map[string][]column{"cap_a": capCols})
	cols := names(capCols)

	s.insert("cap_a", cols, int64(1), "app", int64(1))
	apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		{Table: "cap_a", Op: connector.Upsert, Key: change.Row{"id": int64(10)}, Values: change.Row{"name": "engine"}, Ref: 1},
		{Table: "cap_a", Op: connector.Upsert, Key: change.Row{"id": int64(1)}, Values: change.Row{"name": "engine"}, Ref: 2},
	}})
	// Initial sync writes (zero position) are the engine's too.
	apply(ctx, t, c, connector.Batch{Stream: "s", Writes: []connector.Write{
		{Table: "cap_a", Op: connector.Upsert, Key: change.Row{"id": int64(11)}, Values: change.Row{"name": "engine"}, Ref: 3},
	}})
	res := apply(ctx, t, c, connector.Batch{Stream: "s", Position: change.Position{LSN: 2}, Isolate: true, Writes: []connector.Write{
		{Table: "cap_a", Op: connector.Delete, Key: change.Row{"id": int64(10)}, Ref: 4},
	}})
	if len(res.Failed) > 0 {
		t.Fatalf("Apply failed: %+v", res.Failed)
	}
	s.exec(fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s = %s", s.q("cap_a"), s.q("qty"), h.Placeholder(1), s.q("id"), h.Placeholder(2)), int64(2), int64(1))
	s.insert("cap_a", cols, int64(99), "sentinel", nil)

	txs := r.until(isRow("cap_a", change.Insert, 99))
	r.expectChanges(flatten(txs), []change.Change{
		{Table: "cap_a", Op: change.Insert, New: capRow(1, "app", int64(1))},
		{Table: "cap_a", Op: change.Update, Old: capRow(1, "engine", int64(1)), New: capRow(1, "engine", int64(2))},
		{Table: "cap_a", Op: change.Insert, New: capRow(99, "sentinel", nil)},
	})
	if ec, ok := r.cp.(connector.EchoCounter); ok {
		if n := ec.EchoesSuppressed(); n < 1 {
			t.Errorf("EchoesSuppressed = %d after the engine wrote three transactions", n)
		}
	}
}

func testCaptureResume(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("cap_a", capCols, []string{"id"})
	tables := map[string][]column{"cap_a": capCols}
	cols := names(capCols)

	r := startCapture(ctx, t, c, change.Position{}, tables)
	s.insert("cap_a", cols, int64(1), "a", nil)
	txs := r.until(isRow("cap_a", change.Insert, 1))
	posA := txs[len(txs)-1].Position
	if err := r.cp.Ack(ctx, posA); err != nil {
		t.Fatalf("Ack(%v): %v", posA, err)
	}
	r.close()

	// Changes made while nobody captures are kept.
	s.insert("cap_a", cols, int64(2), "b", nil)
	s.exec(fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s = %s", s.q("cap_a"), s.q("qty"), h.Placeholder(1), s.q("id"), h.Placeholder(2)), int64(5), int64(2))

	wantBC := []change.Change{
		{Table: "cap_a", Op: change.Insert, New: capRow(2, "b", nil)},
		{Table: "cap_a", Op: change.Update, Old: capRow(2, "b", nil), New: capRow(2, "b", int64(5))},
	}
	// Resuming twice from the same acknowledged position yields the same
	// transactions: nothing lost, nothing twice.
	var posC change.Position
	for round := 0; round < 2; round++ {
		r = startCapture(ctx, t, c, posA, tables)
		txs = r.until(isRow("cap_a", change.Update, 2))
		r.expectChanges(flatten(txs), wantBC)
		posC = txs[len(txs)-1].Position
		if !posA.Less(posC) {
			t.Errorf("resumed position %v is not after %v", posC, posA)
		}
		r.close()
	}

	r = startCapture(ctx, t, c, posA, tables)
	txs = r.until(isRow("cap_a", change.Update, 2))
	if err := r.cp.Ack(ctx, txs[len(txs)-1].Position); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	s.exec(fmt.Sprintf("DELETE FROM %s WHERE %s = %s", s.q("cap_a"), s.q("id"), h.Placeholder(1)), int64(1))
	txs = r.until(isRow("cap_a", change.Delete, 1))
	r.expectChanges(flatten(txs), []change.Change{{Table: "cap_a", Op: change.Delete, Old: capRow(1, "a", nil)}})
	r.close()

	// From the acked position only the later transaction comes back.
	r = startCapture(ctx, t, c, posC, tables)
	s.insert("cap_a", cols, int64(3), "sentinel", nil)
	txs = r.until(isRow("cap_a", change.Insert, 3))
	r.expectChanges(flatten(txs), []change.Change{
		{Table: "cap_a", Op: change.Delete, Old: capRow(1, "a", nil)},
		{Table: "cap_a", Op: change.Insert, New: capRow(3, "sentinel", nil)},
	})
	r.close()

	if rel, ok := c.(connector.Releaser); ok {
		if err := rel.Release(ctx); err != nil {
			t.Errorf("Release: %v", err)
		}
		// Capture can start again after a release.
		r = startCapture(ctx, t, c, change.Position{}, tables)
		s.insert("cap_a", cols, int64(4), "after release", nil)
		txs = r.until(isRow("cap_a", change.Insert, 4))
		r.expectChanges(flatten(txs), []change.Change{{Table: "cap_a", Op: change.Insert, New: capRow(4, "after release", nil)}})
		r.close()
	}
}

func testCaptureContext(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("cap_a", capCols, []string{"id"})
	r := startCapture(ctx, t, c, change.Position{}, map[string][]column{"cap_a": capCols})
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.cp.Next(short)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next on an idle capture with an expiring context returned %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(captureWait):
		t.Fatalf("Next did not return after its context ended")
	}
	// The capturer still works after a cancelled Next.
	s.insert("cap_a", names(capCols), int64(1), "x", nil)
	r.until(isRow("cap_a", change.Insert, 1))
}

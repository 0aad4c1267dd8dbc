package connectortest

import (
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
)

// Truncater is implemented by harnesses whose database has TRUNCATE. The
// suite then requires capture to report a truncate of a watched table as
// one change.Truncate of that table, in order, and nothing for a table
// that is not watched. Without it (SQLite has no TRUNCATE) the suite
// requires DELETE FROM to be reported as a delete of every row.
type Truncater interface {
	// TruncateSQL returns the statement that empties the (quoted) table.
	TruncateSQL(quotedTable string) string
}

func testCaptureTruncate(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	s.create("cap_a", capCols, []string{"id"})
	s.create("cap_x", capCols, []string{"id"})
	cols := names(capCols)
	r := startCapture(ctx, t, c, change.Position{}, map[string][]column{"cap_a": capCols})
	s.insert("cap_a", cols, int64(1), "one", int64(10))
	s.insert("cap_a", cols, int64(2), "two", int64(20))
	s.insert("cap_x", cols, int64(1), "unwatched", int64(1))
	want := []change.Change{
		{Table: "cap_a", Op: change.Insert, New: capRow(1, "one", int64(10))},
		{Table: "cap_a", Op: change.Insert, New: capRow(2, "two", int64(20))},
	}
	if tr, ok := h.(Truncater); ok {
		s.exec(tr.TruncateSQL(s.q("cap_x")))
		s.exec(tr.TruncateSQL(s.q("cap_a")))
		want = append(want, change.Change{Table: "cap_a", Op: change.Truncate})
	} else {
		s.exec("DELETE FROM " + s.q("cap_a"))
		want = append(want,
			change.Change{Table: "cap_a", Op: change.Delete, Old: capRow(1, "one", int64(10))},
			change.Change{Table: "cap_a", Op: change.Delete, Old: capRow(2, "two", int64(20))})
	}
	s.insert("cap_a", cols, int64(3), "after", nil)
	want = append(want, change.Change{Table: "cap_a", Op: change.Insert, New: capRow(3, "after", nil)})
	txs := r.until(isRow("cap_a", change.Insert, 3))
	r.expectChanges(flatten(txs), want)
}

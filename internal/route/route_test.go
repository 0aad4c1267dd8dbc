package route

import (
	"reflect"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
)

func tx(lsn uint64, cs ...change.Change) change.Tx {
	return change.Tx{Position: change.Position{LSN: lsn}, Changes: cs}
}

func ch(table string, op change.Op, k string) change.Change {
	return change.Change{Table: table, Op: op, New: change.Row{"k": k}}
}

func TestShare(t *testing.T) {
	t.Parallel()
	txs := []change.Tx{
		tx(1, ch("currencies", change.Insert, "EUR2"), ch("custtable", change.Insert, "C1"), ch("currencies", change.Update, "EUR2")),
		tx(2, ch("custtable", change.Update, "C1")),
		tx(3, ch("currencies", change.Delete, "X")),
	}
	cases := []struct {
		table string
		want  []change.Tx
	}{
		{"currencies", []change.Tx{tx(1, ch("currencies", change.Insert, "EUR2"), ch("currencies", change.Update, "EUR2")), tx(3, ch("currencies", change.Delete, "X"))}},
		{"custtable", []change.Tx{tx(1, ch("custtable", change.Insert, "C1")), tx(2, ch("custtable", change.Update, "C1"))}},
		{"vendtable", nil},
	}
	for _, tc := range cases {
		t.Run(tc.table, func(t *testing.T) {
			t.Parallel()
			if got := Share(txs, tc.table); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Share(%s) =\n%v\nwant\n%v", tc.table, got, tc.want)
			}
		})
	}
	// The source's transactions are not changed.
	if len(txs[0].Changes) != 3 {
		t.Error("Share changed its input")
	}
}

func TestTruncateIndex(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		txs  []change.Tx
		want int
	}{
		{"none", []change.Tx{tx(1, ch("a", change.Insert, "1"))}, -1},
		{"first", []change.Tx{tx(1, ch("a", change.Truncate, "")), tx(2, ch("a", change.Insert, "1"))}, 0},
		{"inside the second", []change.Tx{tx(1, ch("a", change.Insert, "1")), tx(2, ch("a", change.Insert, "2"), ch("a", change.Truncate, ""))}, 1},
		{"empty", nil, -1},
	}
	for _, tc := range cases {
		if got := TruncateIndex(tc.txs); got != tc.want {
			t.Errorf("%s: TruncateIndex = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestFits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		txs, changes, n int
		want            bool
	}{
		{1, 10, 5, true},
		{300, 10, 1, false}, // the group holds its transactions
		{2, 298, 2, true},
		{2, 299, 2, false}, // past the change bound
	}
	for _, tc := range cases {
		if got := Fits(tc.txs, tc.changes, tc.n, 300, 300); got != tc.want {
			t.Errorf("Fits(%d, %d, %d) = %v, want %v", tc.txs, tc.changes, tc.n, got, tc.want)
		}
	}
}

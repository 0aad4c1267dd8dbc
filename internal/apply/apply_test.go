package apply

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/sqlite"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	ws := make([]connector.Write, 2*connector.MaxBatchRows+1)
	for i := range ws {
		ws[i].Ref = i
	}
	cases := []struct {
		n    int
		want []int // part sizes
	}{
		{0, []int{0}},
		{1, []int{1}},
		{connector.MaxBatchRows, []int{connector.MaxBatchRows}},
		{connector.MaxBatchRows + 1, []int{connector.MaxBatchRows, 1}},
		{2*connector.MaxBatchRows + 1, []int{connector.MaxBatchRows, connector.MaxBatchRows, 1}},
	}
	for _, tc := range cases {
		parts := Split(ws[:tc.n])
		var sizes []int
		next := 0
		for _, p := range parts {
			sizes = append(sizes, len(p))
			for _, w := range p {
				if w.Ref != next {
					t.Fatalf("%d writes: order broken at %d", tc.n, next)
				}
				next++
			}
		}
		if !reflect.DeepEqual(sizes, tc.want) {
			t.Errorf("%d writes: parts %v, want %v", tc.n, sizes, tc.want)
		}
	}
}

func TestRebaseAndSettle(t *testing.T) {
	t.Parallel()
	returned := map[int]change.Row{3: {"id": "u-3"}, 1200: {"id": "u-1200"}}
	part := []connector.Write{
		{Key: change.Row{"order": connector.Ref{Write: 3, Column: "id"}, "line": int64(1)}, Values: change.Row{"qty": int64(2)}},
		{Key: change.Row{"k": int64(1)}, Values: change.Row{"ref": connector.Ref{Write: 1001, Column: "id"}, "x": "y"}},
	}
	got := Rebase(part, 1000, returned)
	if got[0].Key["order"] != "u-3" || got[0].Key["line"] != int64(1) {
		t.Errorf("a key's reference into an earlier part: %v", got[0].Key)
	}
	if got[1].Values["ref"] != (connector.Ref{Write: 1, Column: "id"}) || got[1].Values["x"] != "y" {
		t.Errorf("a reference within the part is renumbered: %v", got[1].Values)
	}
	if _, ok := part[0].Key["order"].(connector.Ref); !ok {
		t.Error("Rebase changed its input")
	}
	if same := Rebase(part, 0, returned); &same[0] != &part[0] {
		t.Error("the first part is used as it is")
	}

	row, ok := Settle(change.Row{"a": connector.Ref{Write: 1200, Column: "id"}, "b": int64(1)}, returned)
	if !ok || row["a"] != "u-1200" || row["b"] != int64(1) {
		t.Errorf("Settle = %v, %v", row, ok)
	}
	if _, ok := Settle(change.Row{"a": connector.Ref{Write: 7, Column: "id"}}, returned); ok {
		t.Error("a reference to a write that returned nothing settles")
	}
}

// TestReadRowsAndBatch runs against a real SQLite database through its
// connector: rows come back aligned with their keys, missing ones nil, and
// a batch with a bad row is applied again isolated.
func TestReadRowsAndBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "side.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE item (code TEXT PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	conn, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := Batch(ctx, conn, connector.Batch{Stream: "s", Writes: []connector.Write{
		{Table: "item", Key: change.Row{"code": "A"}, Op: connector.Upsert, Values: change.Row{"name": "a"}, Ref: 0},
		{Table: "item", Key: change.Row{"code": "B"}, Op: connector.Upsert, Values: change.Row{"name": nil}, Ref: 1},
		{Table: "item", Key: change.Row{"code": "C"}, Op: connector.Upsert, Values: change.Row{"name": "c"}, Ref: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Ref != 1 {
		t.Fatalf("failed = %+v, want only the NULL name", res.Failed)
	}
	rows, err := ReadRows(ctx, conn, "item", []change.Row{{"code": "C"}, {"code": "B"}, {"code": "A"}})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0]["name"] != "c" || rows[1] != nil || rows[2]["name"] != "a" {
		t.Errorf("rows = %v", rows)
	}
}

package postgres

import (
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// TestSnapshotSeesExactlyWhatCaptureDoesNot: rows committed before capture
// created the slot are in the exported snapshot and not in the stream;
// rows committed after are in the stream and not in the snapshot. Values
// that COPY escapes come back exactly.
func TestSnapshotSeesExactlyWhatCaptureDoesNot(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE item (id int PRIMARY KEY, name text, price numeric(19,4), at timestamptz, raw bytea)`)
	tricky := "tab\there\nnew line \\N back\\slash 'quote' 😀"
	env.exec(t, `INSERT INTO item VALUES (1, $1, 12.3400, '2024-03-31 01:30:00.123456+02', '\x00ff'), (2, NULL, NULL, NULL, NULL), (3, 'three', -1, NULL, NULL)`, tricky)
	c := env.open(t)
	cp := capture(t, c, connector.CaptureOptions{Tables: []string{"item"}})
	// After the slot: in the stream only.
	env.exec(t, `INSERT INTO item VALUES (4, 'after', 1, NULL, NULL)`)
	env.exec(t, `UPDATE item SET name = 'changed after' WHERE id = 1`)

	r, err := c.OpenSnapshot(ctxT(t))
	if err != nil || r == nil {
		t.Fatalf("OpenSnapshot = %v, %v; want a reader for the new slot", r, err)
	}
	defer r.Close()
	if again, err := c.OpenSnapshot(ctxT(t)); again != nil || err != nil {
		t.Errorf("second OpenSnapshot = %v, %v; want none: a snapshot is given out once", again, err)
	}
	var got []change.Row
	var after []any
	for {
		rows, err := r.Scan(ctxT(t), connector.ScanRequest{Table: "item", OrderBy: []string{"id"}, After: after, Limit: 2})
		if err != nil {
			t.Fatalf("Scan in snapshot: %v", err)
		}
		if len(rows) == 0 {
			break
		}
		got = append(got, rows...)
		after = []any{rows[len(rows)-1]["id"]}
	}
	if len(got) != 3 {
		t.Fatalf("snapshot holds %d rows, want the 3 from before the slot: %v", len(got), got)
	}
	if got[0]["name"] != tricky {
		t.Errorf("name = %q, want %q (the value as of the snapshot)", got[0]["name"], tricky)
	}
	if got[0]["price"] != change.Decimal("12.3400") {
		t.Errorf("price = %#v, want 12.3400", got[0]["price"])
	}
	if at, ok := got[0]["at"].(time.Time); !ok || !at.Equal(time.Date(2024, 3, 30, 23, 30, 0, 123456000, time.UTC)) {
		t.Errorf("at = %v", got[0]["at"])
	}
	if b, ok := got[0]["raw"].([]byte); !ok || len(b) != 2 || b[0] != 0 || b[1] != 0xff {
		t.Errorf("raw = %#v", got[0]["raw"])
	}
	if got[1]["name"] != nil || got[1]["price"] != nil {
		t.Errorf("NULLs came back as %v", got[1])
	}
	// The stream holds exactly the two later commits.
	tx := next(t, cp)
	if ch := tx.Changes[0]; ch.Op != change.Insert || ch.New["id"] != int64(4) {
		t.Errorf("first streamed change = %v, want the insert of 4", ch)
	}
	tx = next(t, cp)
	if ch := tx.Changes[0]; ch.Op != change.Update || ch.New["name"] != "changed after" {
		t.Errorf("second streamed change = %v, want the update of 1", ch)
	}
	expectNone(t, cp, 300*time.Millisecond)
}

package app_test

import (
	"strings"
	"testing"
	"time"
)

// TestSchemaChangeStopsOnlyItsMap: a column added on the left is
// reported and changes nothing; a mapped column dropped on the right
// stops the items map with DW2051, visibly, while the notes map on the
// same sides keeps syncing; running it again is refused while the column
// is missing; re-adding the column and running the map (initial sync)
// recovers, the change made meanwhile included.
func TestSchemaChangeStopsOnlyItsMap(t *testing.T) {
	for _, right := range []string{"postgres", "mysql"} {
		t.Run("postgres-"+right, func(t *testing.T) {
			left := newAttentionSide(t, "postgres", "items", "notes")
			rs := newAttentionSide(t, right, "item", "note")
			left.exec(t, `INSERT INTO items (code, name, qty) VALUES ('A', 'first', 1), ('B', 'second', 2)`)
			left.exec(t, `INSERT INTO notes (id, body) VALUES ('N-first', 'first')`)
			p := startAttention(t, left, rs, "master: left")
			runMap(t, p, "items")
			runMap(t, p, "notes")
			waitFor(t, "items copied", func() bool { return countRows(t, rs.db, "item") == 2 })
			w := startNotes(t, p, left)

			// An added column is reported, and nothing else happens.
			left.exec(t, `ALTER TABLE items ADD COLUMN extra VARCHAR(20)`)
			waitFor(t, "added column reported", func() bool {
				return strings.Contains(activityOf(t, p, "items"), "schema: DW2052 column extra")
			})
			left.exec(t, `UPDATE items SET qty = 10, extra = 'x' WHERE code = 'A'`)
			waitFor(t, "change after the added column", func() bool {
				return countRows(t, rs.db, "item WHERE itemcode = 'A' AND quantity = 10") == 1
			})
			if v := viewOf(t, p, "items"); v.Status != "Running" || v.Condition != nil {
				t.Fatalf("items after an added column: %s", v)
			}

			// A mapped column dropped on the target stops the map.
			rs.exec(t, `ALTER TABLE item DROP COLUMN title`)
			left.exec(t, `UPDATE items SET name = 'renamed' WHERE code = 'B'`)
			waitFor(t, "items stopped with DW2051", func() bool {
				v := viewOf(t, p, "items")
				return v.Status == "Not running" && v.Condition != nil && v.Condition.Code == "DW2051"
			})
			v := viewOf(t, p, "items")
			if !strings.Contains(v.Condition.Message, "title") {
				t.Errorf("the condition does not name the column: %s", v)
			}
			if v.CatchUpErrors != 0 {
				t.Errorf("%d catch-up errors parked; the map should have stopped instead", v.CatchUpErrors)
			}
			out, _ := cli(t, p, "maps", "list")
			if !strings.Contains(out, "Not running, STOPPED DW2051") {
				t.Errorf("maps list:\n%s", out)
			}
			out, code := cli(t, p, "maps", "run", "items")
			if code == 0 || !strings.Contains(out, "DW2051") {
				t.Errorf("run with the column still missing (%d):\n%s", code, out)
			}

			// The fix, and a resync.
			rs.exec(t, `ALTER TABLE item ADD COLUMN title VARCHAR(100)`)
			out, code = cli(t, p, "maps", "run", "items", "--wait")
			if code != 0 {
				t.Fatalf("run after the fix (%d):\n%s", code, out)
			}
			waitFor(t, "the change made meanwhile arrives", func() bool {
				return countRows(t, rs.db, "item WHERE itemcode = 'B' AND title = 'renamed'") == 1 &&
					countRows(t, rs.db, "item WHERE itemcode = 'A' AND title = 'first'") == 1
			})
			if v := viewOf(t, p, "items"); v.Status != "Running" || v.Condition != nil {
				t.Fatalf("items after the resync: %s", v)
			}
			w.finish(rs)
		})
	}
}

// TestSourceSchemaChangeStopsItsMap: a mapped column dropped on the
// source side (seen in the replication stream's relation messages on
// PostgreSQL, in the binlog's DDL events on MariaDB) stops the map with
// DW2051; the notes map on the same side keeps syncing.
func TestSourceSchemaChangeStopsItsMap(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			left := newAttentionSide(t, driver, "items", "notes")
			right := newAttentionSide(t, "sqlite", "item", "note")
			left.exec(t, `INSERT INTO items (code, name, qty) VALUES ('A', 'first', 1)`)
			left.exec(t, `INSERT INTO notes (id, body) VALUES ('N-first', 'first')`)
			p := startAttention(t, left, right, "")
			runMap(t, p, "items")
			runMap(t, p, "notes")
			waitFor(t, "items copied", func() bool { return countRows(t, right.db, "item") == 1 })
			w := startNotes(t, p, left)
			dropped := time.Now()
			left.exec(t, `ALTER TABLE items DROP COLUMN qty`)
			left.exec(t, `UPDATE items SET name = 'after the drop' WHERE code = 'A'`)
			waitFor(t, "items stopped with DW2051", func() bool {
				v := viewOf(t, p, "items")
				return v.Status == "Not running" && v.Condition != nil && v.Condition.Code == "DW2051" && strings.Contains(v.Condition.Message, "qty")
			})
			t.Logf("stopped %v after the column was dropped: %s", time.Since(dropped).Round(time.Millisecond), viewOf(t, p, "items"))
			w.finish(right)
		})
	}
}

// TestSchemaChangeRetypeOrRename: a mapped column retyped to a kind that
// cannot carry the other side's values, or the target table renamed,
// stops only the items map with DW2051 naming the problem.
func TestSchemaChangeRetypeOrRename(t *testing.T) {
	tests := []struct{ name, ddl, want string }{
		{"retyped", `ALTER TABLE item ALTER COLUMN quantity TYPE TIMESTAMPTZ USING NULL`, "quantity"},
		{"renamed", `ALTER TABLE item RENAME TO item_old`, "item"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			left := newAttentionSide(t, "sqlite", "items", "notes")
			right := newAttentionSide(t, "postgres", "item", "note")
			left.exec(t, `INSERT INTO items (code, name, qty) VALUES ('A', 'first', 1)`)
			left.exec(t, `INSERT INTO notes (id, body) VALUES ('N-first', 'first')`)
			p := startAttention(t, left, right, "")
			runMap(t, p, "items")
			runMap(t, p, "notes")
			waitFor(t, "items copied", func() bool { return countRows(t, right.db, "item") == 1 })
			w := startNotes(t, p, left)
			right.exec(t, tc.ddl)
			left.exec(t, `UPDATE items SET qty = 2 WHERE code = 'A'`)
			waitFor(t, "items stopped with DW2051", func() bool {
				v := viewOf(t, p, "items")
				return v.Status == "Not running" && v.Condition != nil && v.Condition.Code == "DW2051" && strings.Contains(v.Condition.Message, tc.want)
			})
			t.Logf("%s", viewOf(t, p, "items"))
			w.finish(right)
		})
	}
}

package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func queueDepth(t *testing.T, p *engineProc, name string) int64 {
	t.Helper()
	resp, err := p.do("GET", "/api/v1/maps/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		QueueDepth int64 `json:"queue_depth"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.QueueDepth
}

// TestTruncatePerMap truncates the items table on the left side while a
// second map on the same side (notes) syncs under a steady write load:
// the items map does what its on_truncate says, the notes map never
// stops. SQLite has no TRUNCATE: DELETE FROM fires the capture triggers
// row by row and propagates as deletes.
func TestTruncatePerMap(t *testing.T) {
	const rows = 30
	tests := []struct {
		driver, onTruncate string
		paused             bool // the truncate waits in the queue and is replayed on resume
	}{
		{"postgres", "", false}, // the default: stop
		{"mysql", "", false},
		{"sqlite", "", false},
		{"postgres", "propagate", false},
		{"mysql", "propagate", false},
		{"postgres", "propagate", true},
		{"postgres", "resync", false},
		{"mysql", "resync", true},
	}
	for _, tc := range tests {
		name := tc.driver + "-" + tc.onTruncate
		if tc.onTruncate == "" {
			name = tc.driver + "-default"
		}
		if tc.paused {
			name += "-paused"
		}
		t.Run(name, func(t *testing.T) {
			left := newAttentionSide(t, tc.driver, "items", "notes")
			right := newAttentionSide(t, "sqlite", "item", "note")
			for i := range rows {
				left.exec(t, `INSERT INTO items (code, name, qty) VALUES (?, ?, ?)`, fmt.Sprintf("I-%03d", i), "item", i)
			}
			left.exec(t, `INSERT INTO notes (id, body) VALUES ('N-first', 'first')`)
			extra := ""
			if tc.onTruncate != "" {
				extra = "on_truncate: " + tc.onTruncate
			}
			p := startAttention(t, left, right, extra)
			runMap(t, p, "items")
			runMap(t, p, "notes")
			waitFor(t, "items copied", func() bool { return countRows(t, right.db, "item") == rows })

			w := startNotes(t, p, left)
			truncate := map[string]string{
				"postgres": `TRUNCATE items`,
				"mysql":    "/* reload */ TRUNCATE TABLE `items`",
				"sqlite":   `DELETE FROM items`,
			}[tc.driver]
			if tc.paused {
				if code, body := p.post("/api/v1/maps/items/pause", map[string]any{}); code != 200 {
					t.Fatalf("pause: %d %s", code, body)
				}
			}
			left.exec(t, truncate)
			left.exec(t, `INSERT INTO items (code, name, qty) VALUES ('AFTER-1', 'after the truncate', 1)`)
			if tc.paused {
				waitFor(t, "truncate queued", func() bool { return queueDepth(t, p, "items") >= 2 })
				if n := countRows(t, right.db, "item"); n != rows {
					t.Fatalf("a paused map applied the truncate: %d rows on the right", n)
				}
				runMap(t, p, "items") // resume: the queue is replayed in order
			}

			switch {
			case tc.driver == "sqlite", tc.onTruncate == "propagate":
				// Only the row written after the truncate is left on both sides.
				waitFor(t, "the truncate reaches the right side", func() bool {
					return countRows(t, right.db, "item") == 1 &&
						countRows(t, right.db, "item WHERE itemcode = 'AFTER-1'") == 1
				})
				if v := viewOf(t, p, "items"); v.Status != "Running" || v.Condition != nil {
					t.Fatalf("items after a propagated truncate: %s", v)
				}
				if tc.driver != "sqlite" && !strings.Contains(activityOf(t, p, "items"), fmt.Sprintf("%d rows of item deleted on crm", rows)) {
					t.Errorf("activity log does not report the propagated truncate:\n%s", activityOf(t, p, "items"))
				}
			case tc.onTruncate == "resync":
				// Stopped, then run again with initial sync: the map is
				// bidirectional, so the rows the right side kept come back
				// to the left, and both sides hold the same rows.
				waitFor(t, "resync logged", func() bool {
					return strings.Contains(activityOf(t, p, "items"), "attention: DW2011")
				})
				waitFor(t, "items running again, sides equal", func() bool {
					return p.status("items") == "Running" && countRows(t, right.db, "item") == rows+1 &&
						countRows(t, left.db, "items") == rows+1
				})
			default:
				// stop: Not running, with DW2011 in the view, the CLI and
				// the activity log; the right side keeps its rows.
				waitFor(t, "items stopped by the engine", func() bool {
					v := viewOf(t, p, "items")
					return v.Status == "Not running" && v.Condition != nil && v.Condition.Code == "DW2011" && v.Condition.Kind == "stopped"
				})
				out, code := cli(t, p, "maps", "list")
				if code != 0 || !strings.Contains(out, "Not running, STOPPED DW2011") {
					t.Errorf("maps list does not show the stop (%d):\n%s", code, out)
				}
				out, _ = cli(t, p, "maps", "show", "items")
				if !strings.Contains(out, "STOPPED by the engine") || !strings.Contains(out, "truncated on erp") {
					t.Errorf("maps show does not say why:\n%s", out)
				}
				if log := activityOf(t, p, "items"); !strings.Contains(log, "attention: DW2011 table items was truncated on erp") {
					t.Errorf("activity log:\n%s", log)
				}
				if n := countRows(t, right.db, "item"); n != rows {
					t.Errorf("right side holds %d items after the stop, want the %d it had", n, rows)
				}
				w.finish(right)
				// The stop survives a restart of the engine.
				p.kill()
				p.start()
				waitFor(t, "the stop is still shown after a restart", func() bool {
					v := viewOf(t, p, "items")
					return v.Status == "Not running" && v.Condition != nil && v.Condition.Code == "DW2011"
				})
				// Running it again restores what the left lost: the map is
				// bidirectional and the right side kept its rows.
				out, code = cli(t, p, "maps", "run", "items", "--wait")
				if code != 0 {
					t.Fatalf("run after the stop (%d):\n%s", code, out)
				}
				waitFor(t, "both sides equal after the run", func() bool {
					return countRows(t, left.db, "items") == rows+1 && countRows(t, right.db, "item") == rows+1
				})
				if v := viewOf(t, p, "items"); v.Condition != nil {
					t.Errorf("the condition stayed after the run: %s", v)
				}
				return
			}
			w.finish(right)
		})
	}
}

// TestTruncateReloadPropagates: the reload pattern, a TRUNCATE and the
// table written again in the same transaction, with on_truncate:
// propagate leaves the other side with exactly the reloaded rows, the
// keys that came back included.
func TestTruncateReloadPropagates(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			left := newAttentionSide(t, driver, "items", "notes")
			right := newAttentionSide(t, "sqlite", "item", "note")
			for i := range 10 {
				left.exec(t, `INSERT INTO items (code, name, qty) VALUES (?, 'old', ?)`, fmt.Sprintf("I-%03d", i), i)
			}
			p := startAttention(t, left, right, "on_truncate: propagate")
			runMap(t, p, "items")
			waitFor(t, "items copied", func() bool { return countRows(t, right.db, "item") == 10 })
			tx, err := left.db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			stmts := []string{map[string]string{"postgres": "TRUNCATE items", "mysql": "DELETE FROM items"}[driver]}
			if driver == "mysql" {
				// TRUNCATE commits implicitly on MariaDB: reload right after it.
				mustExec(t, left.db, "TRUNCATE TABLE items")
				stmts = nil
			}
			for _, q := range stmts {
				if _, err := tx.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			for i := 5; i < 15; i++ {
				if _, err := tx.Exec(faultSQL(driver, `INSERT INTO items (code, name, qty) VALUES (?, 'reloaded', ?)`), fmt.Sprintf("I-%03d", i), 100+i); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the right side holds the reloaded rows only", func() bool {
				return countRows(t, right.db, "item") == 10 && countRows(t, right.db, "item WHERE title = 'reloaded' AND quantity >= 105") == 10
			})
			if v := viewOf(t, p, "items"); v.Status != "Running" || v.Condition != nil || v.CatchUpErrors != 0 {
				t.Fatalf("items after the reload: %s, %d catch-up errors", v, v.CatchUpErrors)
			}
		})
	}
}

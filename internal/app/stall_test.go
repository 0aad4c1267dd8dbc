package app_test

import (
	"strings"
	"testing"
)

// TestStallIsVisibleAndClears stops the right side's PostgreSQL server
// (a private one) while both maps run: every map shows the stall, with
// its code and cause, in the API, `maps list` and the activity log, and
// never a bare Running; when the server is back the stall clears by
// itself and the change written meanwhile arrives. Then the right side's
// replication slot is dropped under the engine: the stall names the lost
// slot (DW2010) and stays until the maps are resynced.
func TestStallIsVisibleAndClears(t *testing.T) {
	pg := startPrivatePG(t)
	left := newAttentionSide(t, "sqlite", "items", "notes")
	var right attentionSide
	right.driver = "postgres"
	right.dsn, right.db = pg.createDB(t)
	mustExec(t, right.db, `CREATE TABLE item (itemcode VARCHAR(40) PRIMARY KEY, title VARCHAR(100), quantity INTEGER)`)
	mustExec(t, right.db, `CREATE TABLE note (noteid VARCHAR(40) PRIMARY KEY, content VARCHAR(100))`)
	left.exec(t, `INSERT INTO items (code, name, qty) VALUES ('A', 'first', 1)`)
	p := startAttention(t, left, right, "")
	runMap(t, p, "items")
	runMap(t, p, "notes")
	waitFor(t, "items copied", func() bool { return countRows(t, right.db, "item") == 1 })

	if err := pg.ctl("stop", "-m", "fast"); err != nil {
		t.Fatal(err)
	}
	left.exec(t, `INSERT INTO items (code, name, qty) VALUES ('B', 'while down', 2)`)
	for _, m := range []string{"items", "notes"} {
		waitFor(t, m+" shows the stall", func() bool {
			v := viewOf(t, p, m)
			return v.Status == "Running" && v.Condition != nil && v.Condition.Kind == "stalled" && v.Condition.Code != "" && v.Condition.Message != ""
		})
	}
	t.Logf("while the server is down: items %s; notes %s", viewOf(t, p, "items"), viewOf(t, p, "notes"))
	out, code := cli(t, p, "maps", "list")
	if code != 0 || strings.Contains(out, "Running  ") || !strings.Contains(out, "Running, STALLED DW") {
		t.Errorf("maps list while the server is down (%d):\n%s", code, out)
	}
	out, _ = cli(t, p, "maps", "show", "items")
	if !strings.Contains(out, "STALLED on ") {
		t.Errorf("maps show while the server is down:\n%s", out)
	}
	waitFor(t, "stall in the activity log", func() bool {
		return strings.Contains(activityOf(t, p, "items"), "stalled: DW")
	})

	if err := pg.ctl("start"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stall clears by itself", func() bool {
		v := viewOf(t, p, "items")
		return v.Status == "Running" && v.Condition == nil && viewOf(t, p, "notes").Condition == nil
	})
	waitFor(t, "the change made while down arrives", func() bool {
		return countRows(t, right.db, "item WHERE itemcode = 'B'") == 1
	})
	waitFor(t, "stall cleared in the activity log", func() bool {
		return strings.Contains(activityOf(t, p, "items"), "stall cleared")
	})

	// The slot is dropped under the engine: capture cannot resume.
	admin := openPGAdmin(t, pg.dsn("postgres"))
	waitFor(t, "slot dropped", func() bool {
		_, err := admin.Exec(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL`)
		if err != nil {
			return false
		}
		_, err = admin.Exec(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots`)
		return err == nil
	})
	right.exec(t, `INSERT INTO item (itemcode, title, quantity) VALUES ('R-1', 'from crm', 3)`)
	waitFor(t, "the lost slot shows with DW2010", func() bool {
		v := viewOf(t, p, "items")
		return v.Status == "Running" && v.Condition != nil && v.Condition.Code == "DW2010" && v.Condition.Side == "crm"
	})
	t.Logf("after the slot was dropped: items %s", viewOf(t, p, "items"))
}

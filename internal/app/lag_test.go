package app_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// mapLag reads a map's lag per side from the API, as `maps list` shows it.
func mapLag(t *testing.T, p *engineProc, name string) map[string]float64 {
	t.Helper()
	resp, err := p.do("GET", "/api/v1/maps/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Lag []struct {
			Side    string  `json:"side"`
			Seconds float64 `json:"seconds"`
		} `json:"lag"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range v.Lag {
		out[l.Side] = l.Seconds
	}
	return out
}

// TestLagIsZeroWhenIdleAndGrowsWhenStuck runs PostgreSQL ↔ PostgreSQL
// through the binary: after an idle period the lag of both sides is 0 s
// (not the time since the last change); while the target is locked, a
// captured change waits and the lag is its age, growing; once it is
// applied, the lag is 0 again. (The idle period is a few seconds, not a
// minute: the engine's own test drives an injected clock a minute ahead.)
func TestLagIsZeroWhenIdleAndGrowsWhenStuck(t *testing.T) {
	erpDSN, erp := serverDB(t, "postgres", "")
	mustExec(t, erp, serverItemsLeft)
	crmDSN, crm := serverDB(t, "postgres", "")
	mustExec(t, crm, serverItemsRight("postgres"))
	dir := t.TempDir()
	p := serveConfig(t, dir, func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", erpDSN, "postgres", crmDSN, dir, api, "conv_lag")
	})
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items Running", func() bool { return p.status("items") == "Running" })
	mustExec(t, erp, `INSERT INTO items (code, name, qty) VALUES ('E-1', 'one', 1)`)
	waitFor(t, "E-1 on the CRM", func() bool { return countWhere(t, crm, `SELECT count(*) FROM item WHERE itemcode = 'E-1'`) == 1 })

	const idle = 3 * time.Second
	time.Sleep(idle)
	lag := mapLag(t, p, "items")
	if len(lag) != 2 || lag["erp"] != 0 || lag["crm"] != 0 {
		t.Fatalf("lag after %s idle = %v, want 0 s on erp and crm", idle, lag)
	}

	// The CRM table is locked: the next ERP change is captured and waits.
	tx, err := crm.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`LOCK TABLE item IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	mustExec(t, erp, `INSERT INTO items (code, name, qty) VALUES ('E-2', 'two', 2)`)
	waitFor(t, "the waiting change's lag to pass 2 s", func() bool { return mapLag(t, p, "items")["erp"] >= 2 })
	first := mapLag(t, p, "items")["erp"]
	time.Sleep(time.Second)
	if again := mapLag(t, p, "items")["erp"]; again < first+0.5 {
		t.Fatalf("lag of a stuck change went from %.2fs to %.2fs a second later; it must grow", first, again)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "E-2 on the CRM", func() bool { return countWhere(t, crm, `SELECT count(*) FROM item WHERE itemcode = 'E-2'`) == 1 })
	waitFor(t, "lag back to 0", func() bool { l := mapLag(t, p, "items"); return l["erp"] == 0 && l["crm"] == 0 })
}

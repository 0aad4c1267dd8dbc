package app_test

import (
	"bufio"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
)

// scrape reads /metrics with the viewer token (as a Prometheus server
// would) and returns every sample by its series, e.g.
// `dualwrite_queue_depth{map="items"}`.
func scrape(t *testing.T, p *engineProc) map[string]float64 {
	t.Helper()
	cfg, err := config.Load(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := readFileToken(cfg.Engine.DataDir, auth.Viewer)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", p.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readFileToken reads one role's token file as written at first start.
func readFileToken(dataDir string, r auth.Role) (string, error) {
	b, err := os.ReadFile(auth.TokenPath(dataDir, r))
	return strings.TrimSpace(string(b)), err
}

func metric(t *testing.T, m map[string]float64, series string) float64 {
	t.Helper()
	v, ok := m[series]
	if !ok {
		var names []string
		for k := range m {
			if strings.HasPrefix(k, "dualwrite_") {
				names = append(names, k)
			}
		}
		t.Fatalf("no series %s in /metrics; dualwrite series: %v", series, names)
	}
	return v
}

// TestMetricsMoveUnderLoad scrapes /metrics of `dualwrite serve` running
// PostgreSQL ↔ MariaDB and checks that the figures follow what happens:
// initial sync progress, changes applied per direction under load, the
// queue of a paused map and its drain, lag, and status.
func TestMetricsMoveUnderLoad(t *testing.T) {
	const initial = 2000
	leftDSN, erp := serverDB(t, "postgres", "")
	rightDSN, crm := serverDB(t, "mysql", "")
	mustExec(t, erp, serverItemsLeft)
	mustExec(t, crm, serverItemsRight("mysql"))
	mustExec(t, erp, fmt.Sprintf(`INSERT INTO items (code, name, qty, price, note, kind)
		SELECT 'I-' || lpad(i::text, 6, '0'), 'item ' || i, i, 1.5, NULL, 'A' FROM generate_series(1, %d) AS i`, initial))
	dir := t.TempDir()
	link := linkName()
	p := serveConfig(t, dir, func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", leftDSN, "mysql", rightDSN, dir, api, link)
	})

	m := scrape(t, p)
	if v := metric(t, m, `dualwrite_map_status{map="items",status="Not running"}`); v != 1 {
		t.Fatalf("before run: Not running = %v", v)
	}
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })
	m = scrape(t, p)
	if v := metric(t, m, `dualwrite_initial_sync_rows_done{map="items"}`); v < initial {
		t.Errorf("initial_sync_rows_done = %v, want at least %d", v, initial)
	}
	if v := metric(t, m, `dualwrite_initial_sync_progress_ratio{map="items"}`); v != 1 {
		t.Errorf("initial_sync_progress_ratio = %v after the sync, want 1", v)
	}
	if v := metric(t, m, `dualwrite_map_status{map="items",status="Running"}`); v != 1 {
		t.Errorf("Running = %v", v)
	}
	appliedLR := metric(t, m, `dualwrite_applied_changes_total{direction="erp->crm",map="items"}`)
	appliedRL := metric(t, m, `dualwrite_applied_changes_total{direction="crm->erp",map="items"}`)

	// Load both ways: 300 inserts on the left in 30 transactions, 100
	// updates on the right in 10.
	for b := range 30 {
		tx, err := erp.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, err := tx.Exec(`INSERT INTO items (code, name, qty, price, kind) VALUES ($1, 'load', 1, 2.5, 'B')`, fmt.Sprintf("L-%03d-%02d", b, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for b := range 10 {
		mustExec(t, crm, `UPDATE item SET title = CONCAT('crm ', itemcode) WHERE itemcode BETWEEN ? AND ?`,
			fmt.Sprintf("I-%06d", b*10+1), fmt.Sprintf("I-%06d", b*10+10))
	}
	waitFor(t, "the load reaches both sides", func() bool {
		var n int
		return countRows(t, crm, "item") == initial+300 &&
			erp.QueryRow(`SELECT count(*) FROM items WHERE name LIKE 'crm %'`).Scan(&n) == nil && n == 100
	})
	waitFor(t, "the applied counters count the load", func() bool {
		m = scrape(t, p)
		return metric(t, m, `dualwrite_applied_changes_total{direction="erp->crm",map="items"}`)-appliedLR >= 300 &&
			metric(t, m, `dualwrite_applied_changes_total{direction="crm->erp",map="items"}`)-appliedRL >= 100
	})
	if _, ok := m[`dualwrite_lag_bytes{side="erp"}`]; !ok {
		t.Errorf("no lag_bytes for the PostgreSQL side")
	}
	if _, ok := m[`dualwrite_lag_seconds{side="crm"}`]; !ok {
		t.Errorf("no lag_seconds for the MariaDB side")
	}
	if v := metric(t, m, `dualwrite_queue_depth{map="items"}`); v != 0 {
		t.Errorf("queue_depth of a running map = %v", v)
	}

	// Paused: changes wait in the queue, which the metrics show, then drain.
	if code, body := p.post("/api/v1/maps/items/pause", map[string]any{}); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	for i := range 20 {
		mustExec(t, erp, `UPDATE items SET qty = qty + 1 WHERE code = $1`, fmt.Sprintf("I-%06d", i+1))
	}
	waitFor(t, "queue_depth counts the paused map's changes", func() bool {
		m = scrape(t, p)
		return metric(t, m, `dualwrite_queue_depth{map="items"}`) >= 20 && metric(t, m, `dualwrite_queue_bytes{map="items"}`) > 0
	})
	waitFor(t, "queue_age_seconds grows", func() bool {
		return metric(t, scrape(t, p), `dualwrite_queue_age_seconds{map="items"}`) > 0
	})
	if v := metric(t, m, `dualwrite_map_status{map="items",status="Paused"}`); v != 1 {
		t.Errorf("Paused = %v", v)
	}
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitFor(t, "the queue drains", func() bool {
		m = scrape(t, p)
		return metric(t, m, `dualwrite_queue_depth{map="items"}`) == 0 &&
			metric(t, m, `dualwrite_map_status{map="items",status="Running"}`) == 1
	})
	if v := metric(t, m, `dualwrite_scrape_error`); v != 0 {
		t.Errorf("scrape_error = %v", v)
	}
	checkQty(t, crm)
}

func checkQty(t *testing.T, crm *sql.DB) {
	t.Helper()
	var q int
	if err := crm.QueryRow(`SELECT quantity FROM item WHERE itemcode = 'I-000001'`).Scan(&q); err != nil || q != 2 {
		t.Errorf("I-000001 quantity on crm = %d (%v), want 2 after the replay", q, err)
	}
}

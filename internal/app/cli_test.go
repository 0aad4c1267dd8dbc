package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startItems creates the items link (two SQLite files) with n rows on the
// left side, and starts `dualwrite serve` on it.
func startItems(t *testing.T, n int) (*engineProc, string) {
	t.Helper()
	dir := t.TempDir()
	erp := openDB(t, filepath.Join(dir, "erp.db"))
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	mustExec(t, erp, itemsLeft)
	mustExec(t, crm, itemsRight)
	if n > 0 {
		mustExec(t, erp, fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d)
			INSERT INTO items (code, name, qty, price, note, kind) SELECT printf('I-%%06d', i), 'item ' || i, i, '1.5', NULL, 'A' FROM s`, n))
	}
	p := serveConfig(t, dir, func(api string) string { return fmt.Sprintf(itemsConfig, dir, api) })
	return p, dir
}

// serveConfig writes the configuration that config returns for a free API
// address into dir and starts `dualwrite serve` on it. When the test ends
// the items map is stopped (a PostgreSQL side drops its slot) and the
// engine killed.
func serveConfig(t *testing.T, dir string, config func(api string) string) *engineProc {
	t.Helper()
	cfg := filepath.Join(dir, "dualwrite.yaml")
	api := freeAddr(t)
	if err := os.WriteFile(cfg, []byte(config(api)), 0o644); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "engine.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	p := &engineProc{t: t, cfg: cfg, api: "http://" + api, logs: logs}
	p.start()
	t.Cleanup(func() {
		p.post("/api/v1/maps/items/stop", nil)
		p.kill()
	})
	return p
}

// cli runs the dualwrite binary against the engine p serves.
func cli(t *testing.T, p *engineProc, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	// As on the engine's machine: the CLI finds the address and the token
	// through the configuration.
	cmd.Env = append(os.Environ(), "DUALWRITE_CONFIG="+p.cfg)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestCLIDrivesTheEngine uses the command line as a user does: list, run
// with --wait, pause, errors, log, and the failures' exit codes.
func TestCLIDrivesTheEngine(t *testing.T) {
	p, dir := startItems(t, 50)
	out, code := cli(t, p, "maps", "list")
	if code != 0 || !strings.Contains(out, "items") || !strings.Contains(out, "Not running") {
		t.Fatalf("maps list (%d):\n%s", code, out)
	}
	out, code = cli(t, p, "maps", "run", "items", "--wait")
	if code != 0 || !strings.Contains(out, "Running") {
		t.Fatalf("maps run --wait (%d):\n%s", code, out)
	}
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	if n := countRows(t, crm, "item"); n != 50 {
		t.Fatalf("initial sync copied %d rows, want 50", n)
	}
	out, code = cli(t, p, "maps", "run", "items")
	if code == 0 || !strings.Contains(out, "DW2001") {
		t.Fatalf("run of a running map must fail with DW2001 (%d):\n%s", code, out)
	}
	out, code = cli(t, p, "maps", "pause", "items")
	if code != 0 || !strings.Contains(out, "Paused") {
		t.Fatalf("maps pause (%d):\n%s", code, out)
	}
	out, code = cli(t, p, "maps", "list", "--output", "json")
	var list struct {
		Maps []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Maps) != 1 || list.Maps[0].Status != "Paused" {
		t.Fatalf("maps list --output json (%d, %v):\n%s", code, err, out)
	}
	out, code = cli(t, p, "maps", "errors", "items", "--catch-up", "--output", "json")
	if code != 0 || !strings.Contains(out, `"errors"`) {
		t.Fatalf("maps errors --catch-up (%d):\n%s", code, out)
	}
	out, code = cli(t, p, "maps", "log", "items")
	if code != 0 || !strings.Contains(out, "Running → Paused") || !strings.Contains(out, "cli") {
		t.Fatalf("maps log (%d):\n%s", code, out)
	}
	out, code = cli(t, p, "maps", "run", "nosuch")
	if code != 1 || !strings.Contains(out, "DW2002") {
		t.Fatalf("unknown map (%d):\n%s", code, out)
	}
	p.kill()
	out, code = cli(t, p, "maps", "list")
	if code != 1 || !strings.Contains(out, "cannot reach the engine") {
		t.Fatalf("engine down (%d):\n%s", code, out)
	}
}

// TestInitialSyncResumesAfterKill kills the engine with SIGKILL in the
// middle of an initial sync and restarts it: the sync continues where it
// stopped and every row arrives exactly once.
func TestInitialSyncResumesAfterKill(t *testing.T) {
	const rows = 30000
	p, dir := startItems(t, rows)
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	// Wait until some chunks have committed, then kill mid-sync.
	waitFor(t, "initial sync under way", func() bool {
		resp, err := httpGetJSON(p, "/api/v1/maps/items")
		return err == nil && resp.InitRowsDone >= 2000
	})
	p.kill()
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	partial := countRows(t, crm, "item")
	p.start()
	if st := p.status("items"); st != "Initializing" && st != "Running" {
		t.Fatalf("status after restart: %s", st)
	}
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })
	if n := countRows(t, crm, "item"); n != rows {
		t.Fatalf("after resume: %d rows on crm, want %d (had %d when killed)", n, rows, partial)
	}
	var dups int
	if err := crm.QueryRow(`SELECT count(*) FROM (SELECT itemcode FROM item GROUP BY itemcode HAVING count(*) > 1)`).Scan(&dups); err != nil || dups != 0 {
		t.Fatalf("duplicates: %d (%v)", dups, err)
	}
	t.Logf("killed with %d of %d rows copied; resumed to all", partial, rows)
}

type mapJSON struct {
	Status       string `json:"status"`
	InitRowsDone int64  `json:"init_rows_done"`
}

func httpGetJSON(p *engineProc, path string) (mapJSON, error) {
	var v mapJSON
	resp, err := p.do("GET", path, nil)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&v)
	return v, err
}

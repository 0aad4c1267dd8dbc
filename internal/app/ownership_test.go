package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBinary runs the dualwrite binary to its end (at most a minute) and
// returns its combined output and exit code.
func runBinary(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("dualwrite %s did not end: %s", strings.Join(args, " "), out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// expectRefused runs `dualwrite serve` and expects it to exit 1 at once
// with the code and every fragment in its error.
func expectRefused(t *testing.T, cfg string, code string, fragments ...string) string {
	t.Helper()
	out, exit := runBinary(t, "serve", "--config", cfg)
	if exit != 1 || !strings.Contains(out, "error: "+code+" ") {
		t.Fatalf("serve --config %s: exit %d, want 1 with error %s:\n%s", cfg, exit, code, out)
	}
	t.Logf("serve refused: %s", out)
	for _, f := range fragments {
		if !strings.Contains(out, f) {
			t.Errorf("serve's refusal does not name %q:\n%s", f, out)
		}
	}
	return out
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, code := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("dualwrite %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestSecondServeOnOneDataDir starts the real binary twice on one
// data_dir: the second exits with DW2040 naming the directory and the
// first one's pid, and the first goes on.
func TestSecondServeOnOneDataDir(t *testing.T) {
	p, dir := startItems(t, 0)
	expectRefused(t, p.cfg, "DW2040", filepath.Join(dir, "state"), fmt.Sprintf("pid %d", p.cmd.Process.Pid))
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("the first engine no longer answers: %d %s", code, body)
	}
	waitFor(t, "items Running on the first engine", func() bool { return p.status("items") == "Running" })
}

// ownedLink is a PostgreSQL ERP and a SQLite CRM, and the configuration
// of an engine in a data_dir of its own.
type ownedLink struct {
	erpDSN string
	erp    *sql.DB
	crm    *sql.DB
	crmDSN string
}

func (l ownedLink) config(dir string) func(api string) string {
	return func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", l.erpDSN, "sqlite", l.crmDSN, dir, api, "conv_own")
	}
}

// writeConfig writes a configuration for dir without starting anything.
func writeConfig(t *testing.T, dir string, config func(api string) string) string {
	t.Helper()
	path := filepath.Join(dir, "dualwrite.yaml")
	if err := os.WriteFile(path, []byte(config(freeAddr(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestForeignSlotIsNeverAdopted: an engine ran the link with its slot on
// the ERP and died; an engine with a fresh data_dir on the same databases
// is refused (DW2043, then, without owner rows, DW2042 naming the slot)
// until the slot is adopted or dropped deliberately.
func TestForeignSlotIsNeverAdopted(t *testing.T) {
	setup := func(t *testing.T) (ownedLink, string) {
		erpDSN, erp := serverDB(t, "postgres", "")
		mustExec(t, erp, serverItemsLeft)
		shared := t.TempDir()
		l := ownedLink{erpDSN: erpDSN, erp: erp, crmDSN: filepath.Join(shared, "crm.db")}
		l.crm = openDB(t, l.crmDSN)
		mustExec(t, l.crm, serverItemsRight("sqlite"))
		dirA := t.TempDir()
		a := serveConfig(t, dirA, l.config(dirA))
		if code, body := a.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
			t.Fatalf("run: %d %s", code, body)
		}
		waitFor(t, "items Running", func() bool { return a.status("items") == "Running" })
		mustExec(t, erp, `INSERT INTO items (code, name, qty) VALUES ('E-1', 'before', 1)`)
		waitFor(t, "E-1 on the CRM", func() bool { return countWhere(t, l.crm, `SELECT count(*) FROM item WHERE itemcode = 'E-1'`) == 1 })
		a.kill() // no soft stop: the slot stays, held by nobody
		mustExec(t, erp, `INSERT INTO items (code, name, qty) VALUES ('E-2', 'while no engine runs', 2)`)

		dirB := t.TempDir()
		cfgB := writeConfig(t, dirB, l.config(dirB))
		expectRefused(t, cfgB, "DW2043", "link conv_own", "side erp", "dualwrite ownership adopt")
		return l, cfgB
	}

	t.Run("adopt", func(t *testing.T) {
		l, cfgB := setup(t)
		// A slot no owner row covers (left by an earlier version, say).
		mustExec(t, l.erp, `DELETE FROM dualwrite.owner`)
		mustExec(t, l.crm, `DELETE FROM _dw_owner`)
		expectRefused(t, cfgB, "DW2042", "slot dw_conv_own_erp_", "publication dw_conv_own_erp_", "side erp")
		if out := mustRun(t, "ownership", "show", "--config", cfgB); !strings.Contains(out, "slot:") || !strings.Contains(out, "none") {
			t.Errorf("ownership show does not list the slot and the missing owner:\n%s", out)
		}
		out := mustRun(t, "ownership", "adopt", "--config", cfgB)
		if !strings.Contains(out, "adopted slot dw_conv_own_erp_") {
			t.Errorf("adopt does not say what it adopted:\n%s", out)
		}
		b := &engineProc{t: t, cfg: cfgB, api: "http://" + apiOf(t, cfgB), logs: logFile(t, filepath.Dir(cfgB))}
		b.start()
		t.Cleanup(func() {
			b.post("/api/v1/maps/items/stop", nil)
			b.kill()
		})
		// Adopted at its position: the change made while no engine ran
		// arrives without an initial sync.
		if code, body := b.post("/api/v1/maps/items/run", map[string]any{"skip_initial_sync": true}); code != 200 {
			t.Fatalf("run: %d %s", code, body)
		}
		waitFor(t, "E-2 on the CRM", func() bool { return countWhere(t, l.crm, `SELECT count(*) FROM item WHERE itemcode = 'E-2'`) == 1 })
	})

	t.Run("drop", func(t *testing.T) {
		l, cfgB := setup(t)
		var slot string
		if err := l.erp.QueryRow(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`).Scan(&slot); err != nil {
			t.Fatalf("the first engine's slot: %v", err)
		}
		out := mustRun(t, "ownership", "drop", "--config", cfgB, "--side", "erp")
		if !strings.Contains(out, "dropped slot "+slot) {
			t.Errorf("drop does not name the slot %s:\n%s", slot, out)
		}
		if n := countWhere(t, l.erp, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot); n != 0 {
			t.Fatalf("slot %s still exists after drop", slot)
		}
		// The CRM still names the first engine's data_dir as the owner.
		expectRefused(t, cfgB, "DW2043", "side crm")
		mustRun(t, "ownership", "drop", "--config", cfgB, "--side", "crm")
		b := &engineProc{t: t, cfg: cfgB, api: "http://" + apiOf(t, cfgB), logs: logFile(t, filepath.Dir(cfgB))}
		b.start()
		t.Cleanup(func() {
			b.post("/api/v1/maps/items/stop", nil)
			b.kill()
		})
		if code, body := b.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
			t.Fatalf("run: %d %s", code, body)
		}
		waitFor(t, "items Running", func() bool { return b.status("items") == "Running" })
		waitFor(t, "E-2 on the CRM (initial sync)", func() bool { return countWhere(t, l.crm, `SELECT count(*) FROM item WHERE itemcode = 'E-2'`) == 1 })
	})
}

// TestStalePositionOfAMovedSide is the case of a CRM side moved from a
// MariaDB database to a PostgreSQL one under the same link and map names,
// with the old stream's position left in the ERP's progress table: the
// engine refuses it (DW2041) instead of comparing binlog numbers with
// LSNs, and once it is reset deliberately no change is skipped.
func TestStalePositionOfAMovedSide(t *testing.T) {
	erpDSN, erp := serverDB(t, "postgres", "")
	mustExec(t, erp, serverItemsLeft)
	mariaDSN, maria := serverDB(t, "mysql", "")
	mustExec(t, maria, serverItemsRight("mysql"))
	dirA := t.TempDir()
	a := serveConfig(t, dirA, func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", erpDSN, "mysql", mariaDSN, dirA, api, "conv_stale")
	})
	if code, body := a.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items Running", func() bool { return a.status("items") == "Running" })
	mustExec(t, maria, `INSERT INTO item (itemcode, title, quantity) VALUES ('C-1', 'from MariaDB', 1)`)
	waitFor(t, "C-1 on the ERP", func() bool { return countWhere(t, erp, `SELECT count(*) FROM items WHERE code = 'C-1'`) == 1 })
	var stream, source string
	var lsn int64
	if err := erp.QueryRow(`SELECT stream, source, lsn FROM dualwrite.progress WHERE stream LIKE '%crm->erp%'`).Scan(&stream, &source, &lsn); err != nil {
		t.Fatalf("the MariaDB stream's position on the ERP: %v", err)
	}
	if !strings.HasPrefix(source, "mariadb:") {
		t.Fatalf("the position of %s records source %q, want the MariaDB server's identity", stream, source)
	}
	a.kill()

	// The CRM moves to PostgreSQL; the ERP's progress table keeps the old
	// stream's binlog position. A fresh data_dir, as a user would start.
	crmDSN, crm := serverDB(t, "postgres", "")
	mustExec(t, crm, serverItemsRight("postgres"))
	dirB := t.TempDir()
	cfgB := writeConfig(t, dirB, func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", erpDSN, "postgres", crmDSN, dirB, api, "conv_stale")
	})
	expectRefused(t, cfgB, "DW2043", "side erp")
	mustRun(t, "ownership", "adopt", "--config", cfgB)
	// Adoption keeps positions of another source refused.
	expectRefused(t, cfgB, "DW2041", "stream "+stream, "found "+source, "expected postgres:", "dualwrite ownership reset")
	if out := mustRun(t, "ownership", "show", "--config", cfgB); !strings.Contains(out, "FOREIGN") {
		t.Errorf("ownership show does not mark the stale position:\n%s", out)
	}
	if n := countWhere(t, erp, `SELECT count(*) FROM dualwrite.progress WHERE stream = $1 AND lsn = $2`, stream, lsn); n != 1 {
		t.Fatalf("the refused start changed the stale position")
	}
	out := mustRun(t, "ownership", "reset", "--config", cfgB, "--stream", stream)
	if !strings.Contains(out, stream) {
		t.Errorf("reset does not name the stream:\n%s", out)
	}

	b := &engineProc{t: t, cfg: cfgB, api: "http://" + apiOf(t, cfgB), logs: logFile(t, dirB)}
	b.start()
	t.Cleanup(func() {
		b.post("/api/v1/maps/items/stop", nil)
		b.kill()
	})
	if code, body := b.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items Running", func() bool { return b.status("items") == "Running" })
	// No change is skipped: the new source's small positions apply.
	for i := range 3 {
		mustExec(t, crm, fmt.Sprintf(`INSERT INTO item (itemcode, title, quantity) VALUES ('C-%d', 'from PostgreSQL', %d)`, 10+i, i))
	}
	mustExec(t, erp, `INSERT INTO items (code, name, qty) VALUES ('E-9', 'from the ERP', 9)`)
	waitFor(t, "C-10..12 on the ERP", func() bool {
		return countWhere(t, erp, `SELECT count(*) FROM items WHERE code IN ('C-10', 'C-11', 'C-12')`) == 3
	})
	waitFor(t, "E-9 on the CRM", func() bool { return countWhere(t, crm, `SELECT count(*) FROM item WHERE itemcode = 'E-9'`) == 1 })
	if err := erp.QueryRow(`SELECT source FROM dualwrite.progress WHERE stream LIKE '%crm->erp%'`).Scan(&source); err != nil || !strings.HasPrefix(source, "postgres:") {
		t.Fatalf("the ERP's position of the CRM stream records source %q (%v), want the new PostgreSQL source", source, err)
	}
}

func countWhere(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// apiOf reads the listen address back from a configuration file.
func apiOf(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "listen:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	t.Fatalf("%s has no listen address", cfg)
	return ""
}

func logFile(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "engine.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestProgressTablesOfAnEarlierVersion: progress tables created before
// positions carried their source get the column on every driver, and
// their positions count as foreign (DW2041) until adopted deliberately.
func TestProgressTablesOfAnEarlierVersion(t *testing.T) {
	for _, right := range []string{"mysql", "sqlite"} {
		t.Run("postgres-"+right, func(t *testing.T) {
			erpDSN, erp := serverDB(t, "postgres", "")
			mustExec(t, erp, serverItemsLeft)
			mustExec(t, erp, `CREATE SCHEMA dualwrite;
CREATE TABLE dualwrite.progress (stream text PRIMARY KEY, lsn bigint NOT NULL, sub int NOT NULL DEFAULT 0, token text NOT NULL DEFAULT '');
INSERT INTO dualwrite.progress VALUES ('items:crm->erp', 4305728688, 0, '')`)
			dir := t.TempDir()
			crmDSN := filepath.Join(dir, "crm.db")
			var crm *sql.DB
			if right == "mysql" {
				crmDSN, crm = serverDB(t, "mysql", "")
				mustExec(t, crm, serverItemsRight("mysql"))
				mustExec(t, crm, "CREATE TABLE _dw_progress (stream varchar(255) NOT NULL PRIMARY KEY, lsn bigint unsigned NOT NULL, sub int unsigned NOT NULL, token varchar(255) NOT NULL) ENGINE=InnoDB")
			} else {
				crm = openDB(t, crmDSN)
				mustExec(t, crm, serverItemsRight("sqlite"))
				mustExec(t, crm, `CREATE TABLE _dw_progress (stream TEXT PRIMARY KEY, lsn INTEGER NOT NULL, sub INTEGER NOT NULL, token TEXT NOT NULL)`)
			}
			mustExec(t, crm, `INSERT INTO _dw_progress (stream, lsn, sub, token) VALUES ('items:erp->crm', 99999999999, 0, '')`)
			cfg := writeConfig(t, dir, func(api string) string {
				return fmt.Sprintf(serverItemsConfig, "postgres", erpDSN, right, crmDSN, dir, api, "conv_legacy")
			})
			out := expectRefused(t, cfg, "DW2041", "found unknown (recorded before positions carried their source)")
			if !strings.Contains(out, "items:crm->erp") && !strings.Contains(out, "items:erp->crm") {
				t.Errorf("the refusal names no stream:\n%s", out)
			}
			// Refused again: the migration is idempotent.
			expectRefused(t, cfg, "DW2041")
			show := mustRun(t, "ownership", "show", "--config", cfg)
			if strings.Count(show, "FOREIGN") != 2 {
				t.Errorf("ownership show marks %d positions FOREIGN, want 2:\n%s", strings.Count(show, "FOREIGN"), show)
			}
			adopt := mustRun(t, "ownership", "adopt", "--config", cfg)
			if strings.Count(adopt, "1 applied positions without a source now belong to") != 2 {
				t.Errorf("adopt did not stamp both positions:\n%s", adopt)
			}
			p := &engineProc{t: t, cfg: cfg, api: "http://" + apiOf(t, cfg), logs: logFile(t, dir)}
			p.start()
			p.kill()
			if show := mustRun(t, "ownership", "show", "--config", cfg); strings.Contains(show, "FOREIGN") {
				t.Errorf("positions still foreign after adopt:\n%s", show)
			}
		})
	}
}

// TestTakenOverEngineStops: a second data_dir adopts the link while the
// first engine runs; the first one stops within seconds with DW2043 so
// that two engines never run one link.
func TestTakenOverEngineStops(t *testing.T) {
	a, dir := startItems(t, 0)
	dirB := t.TempDir()
	cfgB := writeConfig(t, dirB, func(api string) string { return fmt.Sprintf(itemsConfig, dir, api) })
	// itemsConfig puts data_dir beside the databases; move B's elsewhere.
	raw, err := os.ReadFile(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgB, []byte(strings.Replace(string(raw), dir+"/state", dirB+"/state", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, cfgB, "DW2043", "link items")
	mustRun(t, "ownership", "adopt", "--config", cfgB)

	exited := make(chan error, 1)
	cmd := a.cmd
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		a.cmd = nil
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("the taken-over engine ended with %v, want exit status 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the taken-over engine still runs 30 s after another data_dir adopted its link")
	}
	logs, err := os.ReadFile(a.logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "error: DW2043 link items on side") || !strings.Contains(string(logs), "taken over") {
		t.Errorf("the engine's last words do not give DW2043:\n%s", logs)
	}
}

package app_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSoftStopUnderLoad sends SIGTERM to `dualwrite serve` while an
// application writes: the engine says it is finishing the transactions in
// flight, exits 0 within the grace period, and after a restart every row
// written arrives exactly once.
func TestSoftStopUnderLoad(t *testing.T) {
	p, dir := startItems(t, 0)
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })
	erp := openDB(t, filepath.Join(dir, "erp.db"))
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	const rows = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range rows {
			if _, err := erp.Exec(`INSERT INTO items (code, name, qty, price, kind) VALUES (?, 'soft', ?, '1.5', 'A')`, fmt.Sprintf("S-%04d", i), i); err != nil {
				t.Errorf("insert %d: %v", i, err)
				return
			}
		}
	}()
	waitFor(t, "some rows applied", func() bool { return countRows(t, crm, "item") >= 50 })
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	took := time.Since(start)
	p.cmd = nil
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 0) {
		t.Fatalf("serve ended with %v after SIGTERM", err)
	}
	if took > 20*time.Second {
		t.Errorf("soft stop took %s, more than the grace period allows", took)
	}
	logs, _ := os.ReadFile(p.logs.Name())
	if !strings.Contains(string(logs), "finishing the current transaction and saving positions") {
		t.Errorf("the log does not announce the soft stop:\n%s", logs)
	}
	<-done
	p.start()
	waitFor(t, "every row arrives after the restart", func() bool { return countRows(t, crm, "item") == rows })
	var dups int
	if err := crm.QueryRow(`SELECT count(*) FROM (SELECT itemcode FROM item GROUP BY itemcode HAVING count(*) > 1)`).Scan(&dups); err != nil || dups != 0 {
		t.Fatalf("duplicates: %d (%v)", dups, err)
	}
}

package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/dualwrite/dualwrite/internal/app"
	"github.com/dualwrite/dualwrite/internal/config"
)

// link is an end-to-end fixture: two real SQLite files, a configuration
// file, and an engine started through app.Start and driven over its HTTP
// API, as a user would.
type link struct {
	t        *testing.T
	dir      string
	cfgPath  string
	erp, crm *sql.DB
	r        *app.Running
	api      string
}

func newLink(t *testing.T, erpSQL, crmSQL string) *link {
	t.Helper()
	dir := t.TempDir()
	l := &link{t: t, dir: dir}
	tmpl, err := os.ReadFile("testdata/link.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l.cfgPath = filepath.Join(dir, "link.yaml")
	if err := os.WriteFile(l.cfgPath, []byte(strings.ReplaceAll(string(tmpl), "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	l.erp = openDB(t, filepath.Join(dir, "erp.db"))
	l.crm = openDB(t, filepath.Join(dir, "crm.db"))
	l.exec(l.erp, readFile(t, "testdata/erp.sql"))
	l.exec(l.crm, readFile(t, "testdata/crm.sql"))
	if erpSQL != "" {
		l.exec(l.erp, erpSQL)
	}
	if crmSQL != "" {
		l.exec(l.crm, crmSQL)
	}
	t.Cleanup(l.stop)
	return l
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func (l *link) exec(db *sql.DB, stmts string) {
	l.t.Helper()
	if _, err := db.Exec(stmts); err != nil {
		l.t.Fatalf("exec %q: %v", stmts, err)
	}
}

func (l *link) start() {
	l.t.Helper()
	cfg, err := config.Load(l.cfgPath)
	if err != nil {
		l.t.Fatal(err)
	}
	if issues := cfg.Validate(); len(issues) > 0 {
		l.t.Fatalf("config: %v", issues)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := app.Start(context.Background(), cfg, log)
	if err != nil {
		l.t.Fatal(err)
	}
	l.r = r
	l.api = "http://" + r.Addr
}

func (l *link) stop() {
	if l.r != nil {
		l.r.Close()
		l.r = nil
	}
}

type apiError struct {
	Status int
	Code   string
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Body) }

func (l *link) call(method, path string, body, out any) error {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.r.Tokens.Operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &eb)
		return &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Body: string(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s: %w", data, err)
		}
	}
	return nil
}

func (l *link) mustCall(method, path string, body, out any) {
	l.t.Helper()
	if err := l.call(method, path, body, out); err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// eventually polls cond until it holds, failing the test after a generous
// deadline (this bounds waiting; it asserts no timing).
func (l *link) eventually(what string, cond func() (bool, string)) {
	l.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("%s: never happened; last state: %s", what, last)
}

func (l *link) status(name string) string {
	l.t.Helper()
	var v struct{ Status string }
	l.mustCall("GET", "/api/v1/maps/"+name, nil, &v)
	return v.Status
}

func (l *link) waitStatus(name, want string) {
	l.t.Helper()
	l.eventually(name+" reaches "+want, func() (bool, string) {
		st := l.status(name)
		return st == want, st
	})
}

func (l *link) queryString(db *sql.DB, q string, args ...any) string {
	l.t.Helper()
	var v sql.NullString
	err := db.QueryRow(q, args...).Scan(&v)
	if err == sql.ErrNoRows {
		return "<no row>"
	}
	if err != nil {
		l.t.Fatalf("%s: %v", q, err)
	}
	if !v.Valid {
		return "<null>"
	}
	return v.String
}

func (l *link) count(db *sql.DB, q string, args ...any) int {
	l.t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		l.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// verify asks the engine to compare both sides of every map.
func (l *link) verifyAll() (bool, string) {
	var b strings.Builder
	ok := true
	for _, n := range l.r.Engine.MapNames() {
		res, err := l.r.Engine.Verify(context.Background(), n)
		if err != nil {
			return false, err.Error()
		}
		if !res.Equal {
			ok = false
			fmt.Fprintf(&b, "%s: %v %v; ", n, res.Missing, res.Different)
		}
	}
	return ok, b.String()
}

// runAll runs customers with its related maps and waits until all run.
func (l *link) runAll() {
	l.t.Helper()
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{"with_related": true}, nil)
	for _, n := range []string{"companies", "currencies", "customergroups", "customers"} {
		l.waitStatus(n, "Running")
	}
}

const baseERP = `
INSERT INTO companies VALUES ('usmf', 'Contoso USA'), ('demf', 'Contoso Germany');
INSERT INTO currencies VALUES ('USD', 'US Dollar', '$'), ('EUR', 'Euro', '€');
INSERT INTO custgroups VALUES ('10', 'Wholesale');
`

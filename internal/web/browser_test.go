package web_test

// The browser tests drive the workspace in real Chromium (Debian's
// chromium package, installed by scripts/setup-chromium.sh) with chromedp,
// against an engine started through app.Start on real SQLite databases.
// Screenshots of every page go to $DW_ARTIFACTS, or to a directory under
// the test's temporary directory.

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
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	_ "modernc.org/sqlite"

	"github.com/dualwrite/dualwrite/internal/app"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
)

// browserCtx is the one Chromium all tests share; each test opens a tab.
var browserCtx context.Context

func TestMain(m *testing.M) {
	os.Exit(runWithBrowser(m))
}

func runWithBrowser(m *testing.M) int {
	path, err := chromiumPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	profile, err := os.MkdirTemp("", "dualwrite-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(profile)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 860),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "start chromium %s: %v\n", path, err)
		return 1
	}
	browserCtx = ctx
	return m.Run()
}

// chromiumPath finds the browser: $DW_CHROMIUM, else chromium on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("DW_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("the browser tests need Chromium: run scripts/setup-chromium.sh (or set DW_CHROMIUM)")
}

// ws is one test's running engine, its databases and a browser tab.
type ws struct {
	t        *testing.T
	dir      string
	erp, crm *sql.DB
	r        *app.Running
	base     string
	token    string
	ctx      context.Context // the tab
	shots    string
}

const baseERP = `
INSERT INTO companies VALUES ('usmf', 'Contoso USA'), ('demf', 'Contoso Germany');
INSERT INTO currencies VALUES ('USD', 'US Dollar', '$'), ('EUR', 'Euro', '€');
INSERT INTO custgroups VALUES ('10', 'Wholesale');
`

// newWS starts an engine on the app package's test link (four maps:
// customers depends on companies, currencies and customergroups) with
// extraERP run on the ERP side first, and opens a tab.
func newWS(t *testing.T, extraERP, extraConfig string) *ws {
	t.Helper()
	dir := t.TempDir()
	w := &ws{t: t, dir: dir}
	tmpl := readFile(t, "../app/testdata/link.yaml")
	cfgPath := filepath.Join(dir, "link.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(tmpl, "{{DIR}}", dir)+extraConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	w.erp = openDB(t, filepath.Join(dir, "erp.db"))
	w.crm = openDB(t, filepath.Join(dir, "crm.db"))
	w.exec(w.erp, readFile(t, "../app/testdata/erp.sql")+baseERP+extraERP)
	w.exec(w.crm, readFile(t, "../app/testdata/crm.sql"))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if issues := cfg.Validate(); len(issues) > 0 {
		t.Fatalf("config: %v", issues)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	w.r, err = app.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.r.Close)
	w.base = "http://" + w.r.Addr
	tok, err := os.ReadFile(auth.TokenPath(cfg.Engine.DataDir, auth.Operator))
	if err != nil {
		t.Fatal(err)
	}
	w.token = strings.TrimSpace(string(tok))

	w.shots = os.Getenv("DW_ARTIFACTS")
	if w.shots == "" {
		w.shots = filepath.Join(dir, "screenshots")
	}
	if err := os.MkdirAll(w.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// A new tab; the tests run one after another and each starts without
	// cookies (cookies ignore the port, so a previous test's session would
	// otherwise be sent).
	tab, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	tab, cancelTimeout := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(cancelTimeout)
	w.ctx = tab
	w.run("clear cookies", network.ClearBrowserCookies())
	return w
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

func (w *ws) exec(db *sql.DB, stmts string) {
	w.t.Helper()
	if _, err := db.Exec(stmts); err != nil {
		w.t.Fatalf("exec %q: %v", stmts, err)
	}
}

func (w *ws) count(db *sql.DB, q string) int {
	w.t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// run runs browser actions in the tab, failing the test on error.
func (w *ws) run(what string, actions ...chromedp.Action) {
	w.t.Helper()
	if err := chromedp.Run(w.ctx, actions...); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

// login signs the tab in with the operator token through the login form.
func (w *ws) login() {
	w.t.Helper()
	w.run("sign in",
		chromedp.Navigate(w.base+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
		chromedp.SendKeys(`#token`, w.token, chromedp.ByQuery),
		chromedp.Submit(`#token`, chromedp.ByQuery),
		chromedp.WaitVisible(`#map-rows`, chromedp.ByQuery),
	)
}

// shot saves a full-page screenshot as <name>.png.
func (w *ws) shot(name string) {
	w.t.Helper()
	var buf []byte
	w.run("screenshot "+name, chromedp.FullScreenshot(&buf, 100))
	if err := os.WriteFile(filepath.Join(w.shots, name+".png"), buf, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// text returns the text of the first element matching sel.
func (w *ws) text(sel string) string {
	w.t.Helper()
	var s string
	w.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// waitFor polls a JavaScript condition in the page until it is true; the
// page itself must change (live updates), the test does not reload it.
func (w *ws) waitFor(what, js string) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if err := chromedp.Run(w.ctx, chromedp.Evaluate(js, &ok)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var body string
			_ = chromedp.Run(w.ctx, chromedp.Text("main", &body, chromedp.ByQuery))
			w.t.Fatalf("%s: never happened; page shows:\n%s", what, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually polls a Go condition until it holds.
func (w *ws) eventually(what string, cond func() (bool, string)) {
	w.t.Helper()
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
	w.t.Fatalf("%s: never happened; last state: %s", what, last)
}

// api calls the HTTP API (not behind the workspace's login).
func (w *ws) api(method, path string, body, out any) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.base+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		w.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			w.t.Fatalf("decode %s: %v", data, err)
		}
	}
}

type mapView struct {
	Name          string
	Status        string
	Master        string
	QueueDepth    int64 `json:"queue_depth"`
	CatchUpErrors int64 `json:"catch_up_errors"`
}

func (w *ws) view(name string) mapView {
	w.t.Helper()
	var v mapView
	w.api("GET", "/api/v1/maps/"+name, nil, &v)
	return v
}

func (w *ws) waitStatus(name, want string) {
	w.t.Helper()
	w.eventually(name+" reaches "+want, func() (bool, string) {
		st := w.view(name).Status
		return st == want, st
	})
}

// runAll runs customers with its related maps through the API.
func (w *ws) runAll() {
	w.t.Helper()
	w.api("POST", "/api/v1/maps/customers/run", map[string]any{"with_related": true}, nil)
	for _, n := range []string{"companies", "currencies", "customergroups", "customers"} {
		w.waitStatus(n, "Running")
	}
}

type activity struct {
	ID      int64
	Actor   string
	Kind    string
	Message string
}

func (w *ws) activity(name string) []activity {
	w.t.Helper()
	var a struct{ Activity []activity }
	w.api("GET", "/api/v1/maps/"+name+"/activity?limit=1000", nil, &a)
	return a.Activity
}

// rowJS is a JavaScript expression for the list row of a map.
func rowJS(name string) string {
	return fmt.Sprintf(`document.querySelector('tr[data-map=%q]')`, name)
}

package web_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/dualwrite/dualwrite/internal/engine"
)

func TestWorkspaceRefusesWithoutTokenAndSignsIn(t *testing.T) {
	w := newWS(t, "", "")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// A page without a session is redirected to sign in.
	req, _ := http.NewRequest("GET", w.base+"/maps/customers", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("GET /maps/customers without a token: %d, Location %q; want a redirect to /login", resp.StatusCode, loc)
	}
	// An action without a token, or with a wrong one, is refused and does
	// nothing.
	for _, bearer := range []string{"", "dwo_not-the-token"} {
		req, _ := http.NewRequest("POST", w.base+"/maps/customers/pause", strings.NewReader(""))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "DW2300") {
			t.Fatalf("POST pause with bearer %q: %d %s; want 401 DW2300", bearer, resp.StatusCode, body)
		}
	}
	// A valid session cannot be used from another site.
	login, err := noFollow.PostForm(w.base+"/login", url.Values{"token": {w.token}})
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	cookies := login.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie = %+v", cookies)
	}
	req, _ = http.NewRequest("POST", w.base+"/maps/customers/run", strings.NewReader("map=customers&order-customers=1&initial_sync=on"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "http://evil.example")
	req.AddCookie(cookies[0])
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "DW2302") {
		t.Fatalf("cross-origin POST with a session: %d %s; want 403 DW2302", resp.StatusCode, body)
	}
	// The viewer token reads but cannot act, and its pages offer no action.
	viewerTok, err := os.ReadFile(filepath.Join(w.dir, "state", "viewer.token"))
	if err != nil {
		t.Fatal(err)
	}
	vlogin, err := noFollow.PostForm(w.base+"/login", url.Values{"token": {strings.TrimSpace(string(viewerTok))}})
	if err != nil {
		t.Fatal(err)
	}
	vlogin.Body.Close()
	req, _ = http.NewRequest("GET", w.base+"/", nil)
	req.AddCookie(vlogin.Cookies()[0])
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "viewer: read only") || strings.Contains(string(body), `href="/maps/customers/run"`) {
		t.Fatalf("viewer list page: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("pages may be framed by another site: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
	}
	req, _ = http.NewRequest("POST", w.base+"/maps/customers/run", strings.NewReader("map=customers&order-customers=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.base)
	req.AddCookie(vlogin.Cookies()[0])
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "DW2301") {
		t.Fatalf("viewer run: %d %s; want 403 DW2301", resp.StatusCode, body)
	}
	if st := w.view("customers").Status; st != string(engine.NotRunning) {
		t.Fatalf("a refused request changed the map: %s", st)
	}

	// In the browser: the workspace asks for the token, refuses a wrong
	// one, and lets the right one in.
	var loc string
	w.run("open the workspace",
		chromedp.Navigate(w.base+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
		chromedp.Location(&loc),
	)
	if !strings.Contains(loc, "/login") {
		t.Fatalf("workspace without a session shows %s, want the sign-in page", loc)
	}
	w.shot("login")
	w.run("wrong token",
		chromedp.SendKeys(`#token`, "dwo_wrong", chromedp.ByQuery),
		chromedp.Submit(`#token`, chromedp.ByQuery),
		chromedp.WaitVisible(`#login-error`, chromedp.ByQuery),
	)
	if got := w.text(`#login-error`); !strings.Contains(got, "not valid") {
		t.Fatalf("wrong token message: %q", got)
	}
	w.run("right token",
		chromedp.SendKeys(`#token`, w.token, chromedp.ByQuery),
		chromedp.Submit(`#token`, chromedp.ByQuery),
		chromedp.WaitVisible(`#map-rows`, chromedp.ByQuery),
	)
	if who := w.text(`.who`); who != "operator" {
		t.Fatalf("signed in as %q", who)
	}
}

func TestWorkspaceListAndInitialSyncDetails(t *testing.T) {
	w := newWS(t, `
INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES
	('usmf', 'US-001', 'Good', 'USD'),
	('usmf', 'US-002', 'Bad currency', 'XXX');
`, "")
	w.runAll()
	w.login()

	// Every map is listed, and each row offers exactly the actions the
	// engine's lifecycle table allows in its status.
	rows := w.checkRowActions()
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
		if r.Status != "Running" {
			t.Errorf("%s is %s", r.Name, r.Status)
		}
	}
	if want := []string{"companies", "currencies", "customergroups", "customers"}; !slices.Equal(names, want) {
		t.Fatalf("listed maps %v, want %v", names, want)
	}
	if rows[3].Errors != "1 / 0" {
		t.Errorf("customers errors column = %q, want 1 / 0", rows[3].Errors)
	}
	w.shot("list")

	// A keyboard user keeps the focus while the list refreshes itself.
	w.run("focus Pause of customers", chromedp.Evaluate(`
		window.dwSwaps = 0;
		document.addEventListener('htmx:after:settle', () => window.dwSwaps++);
		document.querySelector('tr[data-map="customers"] form[action$="/pause"] button').focus();
		true`, nil))
	w.waitFor("two refreshes", `window.dwSwaps >= 2`)
	var focused string
	w.run("focused", chromedp.Evaluate(`document.activeElement.closest('form')?.getAttribute('action') ?? document.activeElement.tagName`, &focused))
	if focused != "/maps/customers/pause" {
		t.Fatalf("after a refresh the focus is on %q, want the Pause button of customers", focused)
	}

	// Initial sync details: the error with its direction and its key as
	// people write it, never as JSON.
	w.run("initial sync tab", chromedp.Navigate(w.base+"/maps/customers?tab=initial"), chromedp.WaitVisible(`table.errors`, chromedp.ByQuery))
	var cells []string
	w.run("read error", chromedp.Evaluate(`[...document.querySelectorAll('table.errors tbody td')].map(c => c.innerText)`, &cells))
	if len(cells) < 4 || cells[0] != "erp->crm" || cells[1] != "usmf / US-002" || cells[2] != "DW3002" || !strings.Contains(cells[3], "XXX") {
		t.Fatalf("initial sync error row = %q", cells)
	}
	w.shot("map-initial")
	// Fix the cause; rerun only the failed row.
	w.exec(w.erp, `INSERT INTO currencies VALUES ('XXX', 'Test currency', 'x')`)
	w.eventually("XXX reaches crm", func() (bool, string) {
		n := w.count(w.crm, `SELECT count(*) FROM transactioncurrency WHERE isocurrencycode='XXX'`)
		return n == 1, fmt.Sprint(n)
	})
	w.run("rerun failed rows", chromedp.Click(`#rerun`, chromedp.ByQuery), chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery))
	if got := w.text(`.flash.ok`); got != "rerun of failed rows: 1 retried, 1 succeeded, 0 failed" {
		t.Fatalf("rerun said %q", got)
	}
	if n := w.count(w.crm, `SELECT count(*) FROM account WHERE accountnumber='US-002'`); n != 1 {
		t.Fatalf("US-002 not in crm after rerun")
	}

	// The map as configured.
	w.run("columns tab", chromedp.Navigate(w.base+"/maps/customers?tab=columns"), chromedp.WaitVisible(`.panel table`, chromedp.ByQuery))
	page := w.text(`.panel`)
	for _, want := range []string{"custtable", "account", "accountnum", "customertypecode", "Organization ↔ 1", `name + " (" + accountnum + ")"`, "companies, currencies, customergroups", "blocked == 0"} {
		if !strings.Contains(page, want) {
			t.Errorf("columns tab lacks %q:\n%s", want, page)
		}
	}
	w.shot("map-columns")
}

func TestWorkspaceRunsTwoOfThreeRelatedMapsWithAnotherMaster(t *testing.T) {
	w := newWS(t, "", "")
	w.login()
	for _, r := range w.checkRowActions() {
		if r.Status != "Not running" {
			t.Fatalf("%s is %s before any run", r.Name, r.Status)
		}
	}
	w.run("open the run dialog",
		chromedp.Click(`tr[data-map="customers"] .actions a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#run-submit`, chromedp.ByQuery),
	)
	var listed []string
	w.run("read dialog", chromedp.Evaluate(`[...document.querySelectorAll('form.dialog tbody tr')].map(r => r.dataset.map)`, &listed))
	if want := []string{"companies", "currencies", "customergroups", "customers"}; !slices.Equal(listed, want) {
		t.Fatalf("run dialog lists %v, want %v", listed, want)
	}
	// Tick two of the three related maps, make the ERP master of
	// currencies, and run currencies before companies.
	w.run("choose",
		chromedp.Click(`#run-customergroups`, chromedp.ByQuery),
		chromedp.SetValue(`#master-currencies`, "erp", chromedp.ByQuery),
		chromedp.SetValue(`#order-currencies`, "1", chromedp.ByQuery),
		chromedp.SetValue(`#order-companies`, "2", chromedp.ByQuery),
		chromedp.SetValue(`#order-customers`, "3", chromedp.ByQuery),
	)
	w.shot("run-dialog")
	w.run("run", chromedp.Click(`#run-submit`, chromedp.ByQuery), chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery))
	if got := w.text(`.flash.ok`); got != "run: currencies, companies, customers" {
		t.Fatalf("run said %q", got)
	}
	for _, n := range []string{"currencies", "companies", "customers"} {
		w.waitStatus(n, "Running")
	}
	// The list shows it without a reload.
	w.waitFor("customers shown running", rowJS("customers")+`.dataset.status === "Running"`)
	if st := w.view("customergroups").Status; st != string(engine.NotRunning) {
		t.Fatalf("customergroups was not ticked but is %s", st)
	}
	if m := w.view("currencies").Master; m != "erp" {
		t.Fatalf("currencies master = %s, want erp", m)
	}
	if m := w.view("customers").Master; m != "crm" {
		t.Fatalf("customers master = %s, want crm (its configured master)", m)
	}
	runID := func(name string) int64 {
		for _, a := range w.activity(name) {
			if a.Kind == "run" && strings.HasPrefix(a.Message, "run (initial sync on") {
				if !strings.HasPrefix(a.Actor, "operator token ") {
					t.Errorf("%s run recorded for %q", name, a.Actor)
				}
				return a.ID
			}
		}
		t.Fatalf("%s has no run entry", name)
		return 0
	}
	if c, o, u := runID("currencies"), runID("companies"), runID("customers"); !(c < o && o < u) {
		t.Fatalf("run order by activity ids: currencies %d, companies %d, customers %d", c, o, u)
	}
	if n := w.count(w.crm, `SELECT count(*) FROM transactioncurrency`); n != 2 {
		t.Fatalf("currencies initial sync copied %d rows", n)
	}
}

func TestWorkspacePauseResumeQueueDrains(t *testing.T) {
	w := newWS(t, "", "")
	w.runAll()
	w.login()
	w.run("pause customers", chromedp.Click(`tr[data-map="customers"] form[action$="/pause"] button`, chromedp.ByQuery), chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery))
	w.waitFor("customers shown paused", rowJS("customers")+`.dataset.status === "Paused"`)
	w.checkRowActions()
	// One source transaction of three rows: one queued transaction.
	w.exec(w.erp, `BEGIN;
INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'P-0', 'Queued 0', 'USD');
INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'P-1', 'Queued 1', 'USD');
INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'P-2', 'Queued 2', 'USD');
COMMIT;`)
	// The queue shows up in the list without a reload.
	w.waitFor("queue shown", rowJS("customers")+`.querySelector('[data-queue]').dataset.queue === "1"`)
	w.shot("list-paused")
	w.run("queue tab", chromedp.Navigate(w.base+"/maps/customers?tab=queue"), chromedp.WaitVisible(`#queue-left`, chromedp.ByQuery))
	if got := w.text(`#queue-depth`); !strings.HasPrefix(got, "1 source transactions") {
		t.Fatalf("queue depth = %q", got)
	}
	if got := w.text(`#queue-left`); !strings.Contains(got, "h") {
		t.Fatalf("time left before retention = %q", got)
	}
	w.shot("map-queue")
	if n := w.count(w.crm, `SELECT count(*) FROM account`); n != 0 {
		t.Fatalf("a paused map applied %d rows", n)
	}
	// Resume from the map page; the list shows the queue drain.
	w.run("resume",
		chromedp.Click(`#map-header .actions a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#run-submit`, chromedp.ByQuery),
		chromedp.Click(`#run-submit`, chromedp.ByQuery),
		chromedp.WaitVisible(`#map-rows`, chromedp.ByQuery),
	)
	w.waitFor("queue drained", rowJS("customers")+`.dataset.status === "Running" && `+rowJS("customers")+`.querySelector('[data-queue]').dataset.queue === "0"`)
	if n := w.count(w.crm, `SELECT count(*) FROM account WHERE accountnumber LIKE 'P-%'`); n != 3 {
		t.Fatalf("after resume crm has %d of the 3 queued rows", n)
	}
}

func TestWorkspaceRetriesAndDiscardsCatchUpErrors(t *testing.T) {
	w := newWS(t, "", "")
	w.runAll()
	w.api("POST", "/api/v1/maps/customers/pause", map[string]any{}, nil)
	w.exec(w.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'E-1', 'Bad currency', 'ZZZ')`)
	w.exec(w.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'E-3', 'Also bad', 'QQQ')`)
	w.eventually("queued", func() (bool, string) { v := w.view("customers"); return v.QueueDepth >= 1, fmt.Sprint(v.QueueDepth) })
	w.api("POST", "/api/v1/maps/customers/run", map[string]any{}, nil)
	w.waitStatus("customers", "Running")
	w.eventually("two catch-up errors", func() (bool, string) {
		v := w.view("customers")
		return v.CatchUpErrors == 2, fmt.Sprint(v.CatchUpErrors)
	})
	var list struct{ Errors []struct{ ID int64 } }
	w.api("GET", "/api/v1/maps/customers/catchup-errors", nil, &list)

	w.login()
	w.run("catch-up tab", chromedp.Navigate(w.base+"/maps/customers?tab=catchup"), chromedp.WaitVisible(`#retry-selected`, chromedp.ByQuery))
	var keys []string
	w.run("keys", chromedp.Evaluate(`[...document.querySelectorAll('table.errors td.key')].map(c => c.innerText)`, &keys))
	if !slices.Equal(keys, []string{"usmf / E-1", "usmf / E-3"}) {
		t.Fatalf("catch-up keys = %q", keys)
	}
	w.shot("map-catchup")
	w.run("retry with nothing selected", chromedp.Click(`#retry-selected`, chromedp.ByQuery), chromedp.WaitVisible(`.flash.err`, chromedp.ByQuery))
	if got := w.text(`.flash.err`); got != "DW2100 no error is selected; tick the errors, or use the buttons for all" {
		t.Fatalf("retry of nothing said %q", got)
	}
	// Fix E-1's cause, then retry it alone.
	w.exec(w.erp, `INSERT INTO currencies VALUES ('ZZZ', 'Zed', 'z')`)
	w.eventually("ZZZ reaches crm", func() (bool, string) {
		n := w.count(w.crm, `SELECT count(*) FROM transactioncurrency WHERE isocurrencycode='ZZZ'`)
		return n == 1, fmt.Sprint(n)
	})
	w.run("retry E-1",
		chromedp.Click(fmt.Sprintf(`#ce-%d`, list.Errors[0].ID), chromedp.ByQuery),
		chromedp.Click(`#retry-selected`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery),
	)
	if got := w.text(`.flash.ok`); got != "retried 1: 1 succeeded, 0 failed" {
		t.Fatalf("retry said %q", got)
	}
	w.run("discard all", chromedp.Click(`#discard-all`, chromedp.ByQuery))
	w.waitFor("discard done", `document.querySelector('.flash.ok')?.innerText === "discarded 1"`)
	if v := w.view("customers"); v.CatchUpErrors != 0 {
		t.Fatalf("catch-up errors left: %d", v.CatchUpErrors)
	}
	if n := w.count(w.crm, `SELECT count(*) FROM account WHERE accountnumber='E-1'`); n != 1 {
		t.Fatalf("retried E-1 is not in crm")
	}
	if n := w.count(w.crm, `SELECT count(*) FROM account WHERE accountnumber='E-3'`); n != 0 {
		t.Fatalf("discarded E-3 reached crm")
	}
}

func TestWorkspaceActivityFilterAndDownload(t *testing.T) {
	w := newWS(t, "", "")
	w.runAll()
	w.login()
	w.run("activity tab, status entries only",
		chromedp.Navigate(w.base+"/maps/customers?tab=activity"),
		chromedp.WaitVisible(`#f-kind`, chromedp.ByQuery),
		chromedp.SetValue(`#f-kind`, "status", chromedp.ByQuery),
		chromedp.Click(`.filters button`, chromedp.ByQuery),
	)
	w.waitFor("filtered page", `location.search.includes("kind=status") && document.readyState === "complete" && !!document.querySelector('#dl-csv')`)
	var kinds []string
	w.run("kinds", chromedp.Evaluate(`[...document.querySelectorAll('table.activity tbody tr')].map(r => r.cells[2].innerText)`, &kinds))
	if len(kinds) != 2 || kinds[0] != "status" || kinds[1] != "status" { // Not running → Initializing → Running
		t.Fatalf("filtered kinds = %v", kinds)
	}
	w.shot("map-activity")
	w.run("entries from 2099 on",
		chromedp.SetValue(`#f-from`, "2099-01-01T00:00", chromedp.ByQuery),
		chromedp.Click(`.filters button`, chromedp.ByQuery),
	)
	w.waitFor("time-filtered page", `location.search.includes("from=2099") && document.readyState === "complete" && !!document.querySelector('table.activity')`)
	if got := w.text(`table.activity tbody`); got != "No activity matches." {
		t.Fatalf("activity from 2099: %q", got)
	}
	w.run("back to status entries", chromedp.Navigate(w.base+"/maps/customers?tab=activity&kind=status"), chromedp.WaitVisible(`#dl-csv`, chromedp.ByQuery))

	dir := filepath.Join(w.dir, "downloads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.run("allow downloads", browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(dir))
	w.run("download CSV", chromedp.Click(`#dl-csv`, chromedp.ByQuery))
	data := waitFile(t, filepath.Join(dir, "customers-activity.csv"))
	recs, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("CSV %q: %v", data, err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "id,time,map,actor,kind,message" || recs[1][4] != "status" || recs[1][5] != "Initializing → Running" {
		t.Fatalf("CSV = %q", recs)
	}
	w.run("download JSON", chromedp.Click(`#dl-json`, chromedp.ByQuery))
	var doc struct{ Activity []activity }
	if err := json.Unmarshal([]byte(waitFile(t, filepath.Join(dir, "customers-activity.json"))), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Activity) != 2 || doc.Activity[1].Message != "Not running → Initializing" {
		t.Fatalf("JSON = %+v", doc.Activity)
	}
}

// waitFile waits for a finished download.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	t.Fatalf("%s was never downloaded; the directory holds %v", path, entries)
	return ""
}

func TestWorkspaceAlertRuleEditedFires(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(calls) }
	w := newWS(t, "", fmt.Sprintf("notify:\n  webhooks:\n    - {name: chat, url: %q}\n    - {name: other, url: %q}\n", hook.URL+"/chat", hook.URL+"/other"))
	w.runAll()
	w.login()
	// Wrong values are refused with a code and the field, and change nothing.
	for _, c := range []struct{ field, value, want string }{
		{"#r0-errors", "many", `DW2100 rule 1: errors must be a whole number, got "many"`},
		{"#r0-within", "soon", `DW2100 rule 1: within must be a duration such as 15m, got "soon"`},
		{"#r0-errors", "-3", "DW1002 alert rule 1 of map customers: thresholds must not be negative"},
	} {
		w.run("a wrong "+c.field,
			chromedp.Navigate(w.base+"/maps/customers?tab=alerts"),
			chromedp.WaitVisible(`#save-alerts`, chromedp.ByQuery),
			chromedp.SetValue(`#r0-when`, "errors", chromedp.ByQuery),
			chromedp.SetValue(c.field, c.value, chromedp.ByQuery),
			chromedp.Click(`#save-alerts`, chromedp.ByQuery),
			chromedp.WaitVisible(`.flash.err`, chromedp.ByQuery),
		)
		if got := w.text(`.flash.err`); got != c.want {
			t.Errorf("%s = %q: the page says %q, want %q", c.field, c.value, got, c.want)
		}
	}
	if rules := w.r.Alerts.Rules("customers"); len(rules) != 0 {
		t.Fatalf("refused rules were saved: %+v", rules)
	}
	w.run("alerts tab: pause at 2 errors in a minute, tell chat",
		chromedp.Navigate(w.base+"/maps/customers?tab=alerts"),
		chromedp.WaitVisible(`#save-alerts`, chromedp.ByQuery),
		chromedp.SetValue(`#r0-when`, "errors", chromedp.ByQuery),
		chromedp.SetValue(`#r0-errors`, "2", chromedp.ByQuery),
		chromedp.SetValue(`#r0-within`, "1m", chromedp.ByQuery),
		chromedp.SetValue(`#r0-action`, "pause", chromedp.ByQuery),
		chromedp.Click(`input[name="r0-notify"][value="chat"]`, chromedp.ByQuery),
		chromedp.Click(`#save-alerts`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery),
	)
	if got := w.text(`.flash.ok`); got != "alert rules saved (1)" {
		t.Fatalf("save said %q", got)
	}
	if got := w.text(`tr[data-rule="0"] td`); got != "ok" {
		t.Fatalf("new rule state = %q", got)
	}
	// Two changes the CRM cannot take: the rule fires and pauses the map,
	// and the page's header shows it without a reload.
	w.exec(w.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'A-1', 'Bad', 'ZZ1')`)
	w.exec(w.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'A-2', 'Bad', 'ZZ2')`)
	w.waitFor("header shows paused", `document.querySelector('#map-header [data-status]').dataset.status === "Paused"`)
	w.run("reload alerts", chromedp.Reload(), chromedp.WaitVisible(`tr[data-rule="0"].firing`, chromedp.ByQuery))
	if got := w.text(`tr[data-rule="0"] td`); !strings.Contains(got, "firing") || !strings.Contains(got, "2 errors in the last 1m") {
		t.Fatalf("rule state = %q", got)
	}
	w.shot("map-alerts")
	w.eventually("one webhook call, to chat only", func() (bool, string) {
		c := got()
		return len(c) == 1 && strings.HasPrefix(c[0], "/chat ") && strings.Contains(c[0], `"rule":"2 errors in 1m → pause (notify chat)"`) && strings.Contains(c[0], `"state":"firing"`), fmt.Sprint(c)
	})
	var changed, fired, paused bool
	for _, a := range w.activity("customers") {
		switch {
		case a.Kind == "alert" && a.Message == "alert rules changed: 2 errors in 1m → pause (notify chat)" && strings.HasPrefix(a.Actor, "operator token "):
			changed = true
		case a.Kind == "alert" && strings.HasPrefix(a.Message, "DW2030 alert 2 errors in 1m → pause (notify chat): 2 errors in the last 1m; see http://"):
			fired = true
		case a.Kind == "status" && a.Message == "Running → Paused" && a.Actor == "alert":
			paused = true
		}
	}
	if !changed || !fired || !paused {
		t.Fatalf("activity: rules changed %v, alert %v, paused by alert %v: %+v", changed, fired, paused, w.activity("customers"))
	}
	// The alert entry links to the map page in the activity log.
	w.run("activity", chromedp.Navigate(w.base+"/maps/customers?tab=activity&kind=alert"), chromedp.WaitVisible(`tr.k-alert a`, chromedp.ByQuery))
	var href string
	w.run("link", chromedp.Evaluate(`document.querySelector('tr.k-alert a').getAttribute('href')`, &href))
	if href != "/maps/customers" {
		t.Fatalf("alert entry links to %q", href)
	}
}

// listRow is one row of the table maps list as the page shows it.
type listRow struct {
	Name, Status, Errors string
	Actions              []string
}

// checkRowActions reads the list and checks that each row offers exactly
// the actions the engine's lifecycle table allows in the row's status.
func (w *ws) checkRowActions() []listRow {
	w.t.Helper()
	var rows []listRow
	w.run("read rows", chromedp.Evaluate(`[...document.querySelectorAll('#map-rows tr[data-map]')].map(r => ({
		Name: r.dataset.map, Status: r.dataset.status,
		Errors: r.cells[3].innerText,
		Actions: [...r.querySelectorAll('.actions a, .actions button')].map(b => b.firstChild.textContent.trim()),
	}))`, &rows))
	for _, r := range rows {
		want := []string{}
		for _, a := range engine.Actions(engine.Status(r.Status)) {
			want = append(want, strings.ToUpper(string(a[:1]))+string(a[1:]))
		}
		if !slices.Equal(r.Actions, want) {
			w.t.Errorf("%s (%s) offers %v, the lifecycle allows %v", r.Name, r.Status, r.Actions, want)
		}
	}
	return rows
}

func TestWorkspaceSkipsAFailingInitialSync(t *testing.T) {
	w := newWS(t, `
INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES
	('usmf', 'OLD-1', 'Pre-existing', 'USD'),
	('usmf', 'OLD-2', 'Pre-existing too', 'EUR');
`, "")
	// The ERP table disappears after the engine described it: customers
	// cannot start and keeps failing while Initializing.
	w.exec(w.erp, `ALTER TABLE custtable RENAME TO custtable_away`)
	w.api("POST", "/api/v1/maps/customers/run", map[string]any{"with_related": true}, nil)
	w.eventually("customers failing to start", func() (bool, string) {
		var v struct {
			Status        string
			StartFailures int `json:"start_failures"`
		}
		w.api("GET", "/api/v1/maps/customers", nil, &v)
		return v.Status == "Initializing" && v.StartFailures > 0, fmt.Sprintf("%+v", v)
	})
	w.login()
	w.run("initial sync tab", chromedp.Navigate(w.base+"/maps/customers?tab=initial"), chromedp.WaitVisible(`#skip-initial`, chromedp.ByQuery))
	if got := w.text(`#map-header`); !strings.Contains(got, "Cannot start") {
		t.Fatalf("the header does not say the map cannot start:\n%s", got)
	}
	w.shot("map-initial-failing")
	w.run("skip it", chromedp.Click(`#skip-initial`, chromedp.ByQuery), chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery))
	if got := w.text(`.flash.ok`); got != "initial sync skipped; live sync is on" {
		t.Fatalf("skip said %q", got)
	}
	// With the table back, the map starts without copying the old rows,
	// and live sync carries new changes.
	w.exec(w.erp, `ALTER TABLE custtable_away RENAME TO custtable`)
	w.waitStatus("customers", "Running")
	if n := w.count(w.crm, `SELECT count(*) FROM account`); n != 0 {
		t.Fatalf("the skipped initial sync copied %d rows", n)
	}
	w.exec(w.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'NEW-1', 'Live', 'USD')`)
	w.eventually("NEW-1 reaches crm", func() (bool, string) {
		n := w.count(w.crm, `SELECT count(*) FROM account WHERE accountnumber='NEW-1'`)
		return n == 1, fmt.Sprint(n)
	})
	var stopped, ranWithout bool
	for _, a := range w.activity("customers") {
		stopped = stopped || (a.Kind == "status" && a.Message == "Initializing → Not running" && strings.HasPrefix(a.Actor, "operator token "))
		ranWithout = ranWithout || (a.Kind == "run" && strings.HasPrefix(a.Message, "run (initial sync off"))
	}
	if !stopped || !ranWithout {
		t.Fatalf("activity: stopped %v, run without initial sync %v: %+v", stopped, ranWithout, w.activity("customers"))
	}
}

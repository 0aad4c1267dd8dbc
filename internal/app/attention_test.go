package app_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the TRUNCATE, schema change and stall tests: a link with two
// maps on the same sides, items (whose tables the test truncates or
// alters) and notes (which must keep syncing throughout), driven through
// the binary, its API and its CLI.

const attentionConfig = `link:
  name: %[1]s
  left:  {name: erp, driver: %[2]s, dsn: "%[3]s"}
  right: {name: crm, driver: %[4]s, dsn: "%[5]s"}
engine:
  data_dir: "%[6]s/state"
  listen: "%[7]s"
  poll_interval: 10ms
maps:
  - name: items
    left: items
    right: item
    %[8]s
    key: [{left: code, right: itemcode}]
    columns:
      - {left: code, right: itemcode}
      - {left: name, right: title}
      - {left: qty, right: quantity}
  - name: notes
    left: notes
    right: note
    key: [{left: id, right: noteid}]
    columns:
      - {left: id, right: noteid}
      - {left: body, right: content}
`

// attentionSide is one side of the attention link: its driver, the
// engine's DSN and the application's connection.
type attentionSide struct {
	driver, dsn string
	db          *sql.DB
}

// newAttentionSide creates an empty database for driver (a file for
// SQLite) with the items and notes tables.
func newAttentionSide(t *testing.T, driver, itemTable, noteTable string) attentionSide {
	t.Helper()
	var s attentionSide
	s.driver = driver
	if driver == "sqlite" {
		s.dsn = filepath.Join(t.TempDir(), "side.db")
		s.db = openDB(t, s.dsn)
	} else {
		s.dsn, s.db = serverDB(t, driver, "")
	}
	mustExec(t, s.db, fmt.Sprintf(`CREATE TABLE %s (%s VARCHAR(40) PRIMARY KEY, %s VARCHAR(100), %s INTEGER)`,
		itemTable, map[string]string{"items": "code", "item": "itemcode"}[itemTable],
		map[string]string{"items": "name", "item": "title"}[itemTable], map[string]string{"items": "qty", "item": "quantity"}[itemTable]))
	mustExec(t, s.db, fmt.Sprintf(`CREATE TABLE %s (%s VARCHAR(40) PRIMARY KEY, %s VARCHAR(100))`,
		noteTable, map[string]string{"notes": "id", "note": "noteid"}[noteTable], map[string]string{"notes": "body", "note": "content"}[noteTable]))
	return s
}

// startAttention serves the two maps between left and right; itemsExtra
// is a line added to the items map (e.g. "on_truncate: propagate").
func startAttention(t *testing.T, left, right attentionSide, itemsExtra string) *engineProc {
	t.Helper()
	dir := t.TempDir()
	link := linkName()
	p := serveConfig(t, dir, func(api string) string {
		return fmt.Sprintf(attentionConfig, link, left.driver, left.dsn, right.driver, right.dsn, dir, api, itemsExtra)
	})
	t.Cleanup(func() { p.post("/api/v1/maps/notes/stop", nil) }) // runs before serveConfig's kill
	return p
}

// conditionJSON is the condition of a map view.
type conditionJSON struct {
	Kind    string `json:"kind"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Side    string `json:"side"`
}

// attentionView is what these tests read of a map view.
type attentionView struct {
	Status        string         `json:"status"`
	Condition     *conditionJSON `json:"condition"`
	CatchUpErrors int64          `json:"catch_up_errors"`
}

func (v attentionView) String() string {
	if v.Condition == nil {
		return v.Status
	}
	return fmt.Sprintf("%s (%s %s: %s)", v.Status, v.Condition.Kind, v.Condition.Code, v.Condition.Message)
}

func viewOf(t *testing.T, p *engineProc, name string) attentionView {
	t.Helper()
	var v attentionView
	resp, err := p.do("GET", "/api/v1/maps/"+name, nil)
	if err != nil {
		t.Fatalf("GET map %s: %v", name, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode map %s: %v", name, err)
	}
	return v
}

// activityOf returns a map's activity log as "kind: message" lines.
func activityOf(t *testing.T, p *engineProc, name string) string {
	t.Helper()
	resp, err := p.do("GET", "/api/v1/maps/"+name+"/activity", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Activity []struct{ Kind, Message string } `json:"activity"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, a := range body.Activity {
		fmt.Fprintf(&b, "%s: %s\n", a.Kind, a.Message)
	}
	return b.String()
}

func runMap(t *testing.T, p *engineProc, name string) {
	t.Helper()
	if code, body := p.post("/api/v1/maps/"+name+"/run", map[string]any{}); code != 200 {
		t.Fatalf("run %s: %d %s", name, code, body)
	}
	waitFor(t, name+" running", func() bool { return p.status(name) == "Running" })
}

// sideSQL writes q's ? placeholders for the side's driver.
func (s attentionSide) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	mustExec(t, s.db, faultSQL(s.driver, q), args...)
}

// notesWriter inserts a note on the left every few milliseconds until
// stopped, and watches the notes map: it must stay Running, with no
// condition, the whole time.
type notesWriter struct {
	t       *testing.T
	left    attentionSide
	p       *engineProc
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	written int
	bad     string
}

func startNotes(t *testing.T, p *engineProc, left attentionSide) *notesWriter {
	w := &notesWriter{t: t, left: left, p: p, stop: make(chan struct{})}
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := left.db.Exec(faultSQL(left.driver, `INSERT INTO notes (id, body) VALUES (?, ?)`), fmt.Sprintf("N-%05d", i), "note"); err != nil {
				w.fail(fmt.Sprintf("insert note: %v", err))
				return
			}
			w.mu.Lock()
			w.written++
			w.mu.Unlock()
		}
	}()
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var v attentionView
			resp, err := p.do("GET", "/api/v1/maps/notes", nil)
			if err != nil {
				continue
			}
			_ = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if v.Status != "Running" || v.Condition != nil {
				w.fail("notes map showed " + v.String())
				return
			}
		}
	}()
	return w
}

func (w *notesWriter) fail(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bad == "" {
		w.bad = msg
	}
}

// finish stops the writer and requires every note on the right side and
// the notes map Running all along.
func (w *notesWriter) finish(right attentionSide) {
	t := w.t
	t.Helper()
	// Writes go on a while after the other map's event.
	waitFor(t, "notes written meanwhile", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.written >= 25 || w.bad != ""
	})
	close(w.stop)
	w.wg.Wait()
	if w.bad != "" {
		t.Fatalf("second map on the side: %s", w.bad)
	}
	if w.written == 0 {
		t.Fatal("no note was written")
	}
	waitFor(t, fmt.Sprintf("%d notes on the right", w.written+1), func() bool {
		return countRows(t, right.db, "note") == w.written+1
	})
}

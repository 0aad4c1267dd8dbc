package app_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
)

var (
	convergenceOps   = flag.Int("dw.ops", 300, "operations in the randomized convergence test (tens of thousands for a long run)")
	convergenceSeed  = flag.Uint64("dw.seed", 0, "seed of the randomized convergence test (0: from the clock, printed)")
	convergenceDebug = flag.String("dw.debug", "", "copy the engine's debug log of the randomized convergence test to this file")
	convergenceKill  = flag.Bool("dw.kill", true, "SIGKILL the engine at random moments in the randomized convergence test")
	convergencePause = flag.Bool("dw.pause", true, "pause and resume at random in the randomized convergence test")
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "dualwrite-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dualwrite")
	cmd := exec.Command("go", "build", "-o", binary, "../../cmd/dualwrite")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build dualwrite:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The SQLite sides keep their timestamps as text (seen_at TIMESTAMP,
// lastseen DATETIME: both names SQLite applications use), which the
// applications write in several forms and zones (see stampArg).
const itemsLeft = `CREATE TABLE items (code TEXT PRIMARY KEY, name TEXT, qty INTEGER, price DECIMAL(19,4), note TEXT, kind TEXT, seen_at TIMESTAMP);`
const itemsRight = `CREATE TABLE item (itemid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))), itemcode TEXT NOT NULL UNIQUE, title TEXT, quantity INTEGER, amount DECIMAL(19,4), remark TEXT, kindcode INTEGER, lastseen DATETIME);`

const itemsConfig = `link:
  name: items
  left:  {name: erp, driver: sqlite, dsn: "%[1]s/erp.db"}
  right: {name: crm, driver: sqlite, dsn: "%[1]s/crm.db"}
engine:
  data_dir: "%[1]s/state"
  listen: "%[2]s"
  poll_interval: 10ms
maps:
  - name: items
    left: items
    right: item
    key: [{left: code, right: itemcode}]
    columns:
      - {left: code, right: itemcode}
      - {left: name, right: title}
      - {left: qty, right: quantity}
      - {left: price, right: amount}
      - {left: note, right: remark}
      - {left: kind, right: kindcode, value_map: {A: "1", B: "2"}}
      - {left: seen_at, right: lastseen}
`

// engineProc is the dualwrite binary run as a user runs it.
type engineProc struct {
	t    *testing.T
	cfg  string
	api  string
	cmd  *exec.Cmd
	logs *os.File
}

func (p *engineProc) start() {
	p.t.Helper()
	p.cmd = exec.Command(binary, "serve", "--config", p.cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if *convergenceDebug != "" {
		p.cmd.Env = append(os.Environ(), "DUALWRITE_LOG_LEVEL=debug")
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("engine did not start; see %s", p.logs.Name())
}

// kill ends the engine with SIGKILL: no soft stop, possibly mid-batch.
func (p *engineProc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_, _ = p.cmd.Process.Wait()
		p.cmd = nil
	}
}

// token is the operator token the engine wrote in its data_dir at first
// start, read as the CLI reads it.
func (p *engineProc) token() string {
	p.t.Helper()
	cfg, err := config.Load(p.cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	tok, _, err := auth.ReadToken(cfg.Engine.DataDir)
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

// do sends an API request with the operator token.
func (p *engineProc) do(method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, p.api+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token())
	return (&http.Client{Timeout: 10 * time.Second}).Do(req)
}

func (p *engineProc) post(path string, body any) (int, string) {
	b, _ := json.Marshal(body)
	resp, err := p.do("POST", path, strings.NewReader(string(b)))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var out strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	out.Write(buf[:n])
	return resp.StatusCode, out.String()
}

func (p *engineProc) status(name string) string {
	resp, err := p.do("GET", "/api/v1/maps/"+name, nil)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct{ Status string }
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return v.Status
}

func freeAddr(t *testing.T) string {
	t.Helper()
	// Let the kernel pick a free port, then release it for the engine.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRandomizedConvergence makes random inserts, updates and deletes on
// both sides (concurrent edits of the same keys, quotes, unicode, NULLs,
// long text), random pauses and resumes, and SIGKILLs the engine at random
// moments, mid-batch included. At the end both sides must be equal under
// the map, every witness row (inserted once, never touched again) must be
// on both sides exactly once, and nothing may keep flowing (an echo would).
func TestRandomizedConvergence(t *testing.T) {
	seed := *convergenceSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -dw.seed=%d), %d operations", seed, seed, *convergenceOps)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	p, dir := startItems(t, 0)
	erp := openDB(t, filepath.Join(dir, "erp.db"))
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	keepDebugLog(t, p, *convergenceDebug)
	randomizedRun(t, p, erp, crm, *convergenceOps, rng)
}

// keepDebugLog copies the engine's log to path when the test ends, if
// path is set (-dw.debug).
func keepDebugLog(t *testing.T, p *engineProc, path string) {
	if *convergenceDebug == "" {
		return
	}
	logs := p.logs
	t.Cleanup(func() {
		b, _ := os.ReadFile(logs.Name())
		_ = os.WriteFile(path, b, 0o644)
	})
}

type itemValues struct {
	name, note, kind any
	qty              any
	price            any
	seen             any // time.Time in UTC, or nil
	form             int // how the application writes seen: see stampArg
}

// witnessValues are fixed, so a witness also checks that an instant the
// application wrote in its session's zone arrives as that instant.
func witnessValues(k string) itemValues {
	seen := time.Date(2024, 3, 10, 7, 30, 0, 123456000, time.UTC) // 03:30 EDT, just after the spring gap
	if len(k) > 0 && k[len(k)-1]%2 == 0 {
		seen = time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC)
	}
	return itemValues{name: "witness " + k, qty: int64(len(k)), price: "1.25", note: nil, kind: "A", seen: seen, form: formSessionZone}
}

func randomValues(rng *rand.Rand) itemValues {
	texts := []any{nil, "plain", "O'Brien \"quoted\"", "Zürich — 😀 ünïcødé", `back\slash`, strings.Repeat("long text ", 800), ""}
	kinds := []any{nil, "A", "B"}
	prices := []any{nil, "0.0000", "12.3400", "-99999.9999", "123456789012345.1234"}
	var qty any = int64(rng.IntN(1000) - 500)
	if rng.IntN(8) == 0 {
		qty = nil
	}
	return itemValues{name: texts[rng.IntN(len(texts))], note: texts[rng.IntN(len(texts))], kind: kinds[rng.IntN(len(kinds))], qty: qty, price: prices[rng.IntN(len(prices))],
		seen: randomInstant(rng), form: rng.IntN(formCount)}
}

func kindCode(k any) any {
	switch k {
	case "A":
		return int64(1)
	case "B":
		return int64(2)
	}
	return nil
}

// insertItem inserts a row, or does nothing when the engine has just
// brought a row with that key from the other side (like an application
// whose insert loses a race on its unique key).
func insertItem(t *testing.T, db *sql.DB, side, k string, v itemValues) {
	ph, seen := stampArg(t, db, v)
	if side == "erp" {
		appExec(t, db, dialect(db, `INSERT INTO items (code, name, qty, price, note, kind, seen_at) VALUES (?,?,?,?,?,?,`+ph+`) ON CONFLICT DO NOTHING`), k, v.name, v.qty, v.price, v.note, v.kind, seen)
		return
	}
	appExec(t, db, dialect(db, `INSERT INTO item (itemcode, title, quantity, amount, remark, kindcode, lastseen) VALUES (?,?,?,?,?,?,`+ph+`) ON CONFLICT DO NOTHING`), k, v.name, v.qty, v.price, v.note, kindCode(v.kind), seen)
}

// dialect adapts the test's SQLite-flavoured statements to the database
// behind db: $n placeholders on PostgreSQL, INSERT IGNORE on MariaDB.
func dialect(db *sql.DB, q string) string {
	switch fmt.Sprintf("%T", db.Driver()) {
	case "*stdlib.Driver":
		n := 0
		var b strings.Builder
		for _, r := range q {
			if r == '?' {
				n++
				fmt.Fprintf(&b, "$%d", n)
				continue
			}
			b.WriteRune(r)
		}
		return b.String()
	case "mysql.MySQLDriver", "*mysql.MySQLDriver":
		if strings.HasSuffix(q, " ON CONFLICT DO NOTHING") {
			return "INSERT IGNORE" + strings.TrimSuffix(strings.TrimPrefix(q, "INSERT"), " ON CONFLICT DO NOTHING")
		}
	}
	return q
}

func updateItem(t *testing.T, db *sql.DB, side, k string, v itemValues) {
	ph, seen := stampArg(t, db, v)
	if side == "erp" {
		appExec(t, db, dialect(db, `UPDATE items SET name=?, qty=?, price=?, note=?, kind=?, seen_at=`+ph+` WHERE code=?`), v.name, v.qty, v.price, v.note, v.kind, seen, k)
		return
	}
	appExec(t, db, dialect(db, `UPDATE item SET title=?, quantity=?, amount=?, remark=?, kindcode=?, lastseen=`+ph+` WHERE itemcode=?`), v.name, v.qty, v.price, v.note, kindCode(v.kind), seen, k)
}

func deleteItem(t *testing.T, db *sql.DB, side, k string) {
	if side == "erp" {
		appExec(t, db, dialect(db, `DELETE FROM items WHERE code=?`), k)
		return
	}
	appExec(t, db, dialect(db, `DELETE FROM item WHERE itemcode=?`), k)
}

func itemExists(t *testing.T, db *sql.DB, side, k string) bool {
	q := `SELECT count(*) FROM items WHERE code=?`
	if side == "crm" {
		q = `SELECT count(*) FROM item WHERE itemcode=?`
	}
	var n int
	if err := db.QueryRow(dialect(db, q), k).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func itemString(k string, v itemValues) string {
	return fmt.Sprintf("%s|%v|%v|%v|%v|%v|%s", k, v.name, v.qty, v.price, v.note, kindCode(v.kind), instantText(v.seen))
}

// dumpItems reads both sides into comparable strings, the right side's
// kind codes mapped back: an oracle independent of the engine's mapping.
func dumpItems(t *testing.T, erp, crm *sql.DB) (map[string]string, map[string]string) {
	read := func(db *sql.DB, q string, kindIsText bool) map[string]string {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var k string
			var name, note, price sql.NullString
			var qty sql.NullInt64
			var kind, seen any
			if err := rows.Scan(&k, &name, &qty, &price, &note, &kind, &seen); err != nil {
				t.Fatal(err)
			}
			v := itemValues{name: nullable(name), note: nullable(note), price: nullable(trimDecimal(price)), seen: seen}
			if qty.Valid {
				v.qty = qty.Int64
			}
			if kindIsText {
				if b, ok := kind.([]byte); ok {
					kind = string(b)
				}
				v.kind = kind
			} else {
				switch kind {
				case int64(1):
					v.kind = "A"
				case int64(2):
					v.kind = "B"
				}
			}
			out[k] = itemString(k, v)
		}
		return out
	}
	return read(erp, `SELECT code, name, qty, price, note, kind, seen_at FROM items`, true),
		read(crm, `SELECT itemcode, title, quantity, amount, remark, kindcode, lastseen FROM item`, false)
}

// problemsIn returns the warning and error lines of an engine log.
func problemsIn(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	if len(out) > 60 {
		out = out[len(out)-60:]
	}
	return strings.Join(out, "\n")
}

func nullable(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}

func diffDumps(l, r map[string]string) string {
	var keys []string
	seen := map[string]bool{}
	for k := range l {
		keys, seen[k] = append(keys, k), true
	}
	for k := range r {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if l[k] != r[k] {
			lf, rf := strings.Split(l[k], "|"), strings.Split(r[k], "|")
			if len(lf) != len(rf) {
				fmt.Fprintf(&b, "%s: erp %.120q, crm %.120q\n", k, l[k], r[k])
				continue
			}
			names := []string{"code", "name", "qty", "price", "note", "kind", "seen"}
			for i := range lf {
				if lf[i] != rf[i] && i < len(names) {
					fmt.Fprintf(&b, "%s.%s: erp %.80q, crm %.80q\n", k, names[i], lf[i], rf[i])
				}
			}
		}
	}
	return b.String()
}

func appliedCount(t *testing.T, p *engineProc) int64 {
	resp, err := p.do("GET", "/api/v1/maps/items", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Applied map[string]int64 }
	_ = json.NewDecoder(resp.Body).Decode(&v)
	var n int64
	for _, x := range v.Applied {
		n += x
	}
	return n
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// appExec runs a statement of the application. Like applications on
// InnoDB it retries one chosen as a deadlock victim (MariaDB error 1213):
// the engine's upserts lock index gaps, so an application's concurrent
// update of a neighbouring key can lose.
func appExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		_, err := db.Exec(q, args...)
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1213 && attempt < 5 {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// randomizedRun drives random operations on both sides of the items link
// that p serves, then requires convergence with nothing lost or doubled.
func randomizedRun(t *testing.T, p *engineProc, erp, crm *sql.DB, ops int, rng *rand.Rand) {
	t.Helper()
	logs := p.logs
	keys := make([]string, 25)
	for i := range keys {
		keys[i] = fmt.Sprintf("K-%02d", i)
	}
	// Rows that exist before the map runs go through the initial sync,
	// which reads with queries rather than from the log.
	for i, k := range keys[:6] {
		if i%2 == 0 {
			insertItem(t, erp, "erp", k, randomValues(rng))
		} else {
			insertItem(t, crm, "crm", k, randomValues(rng))
		}
	}
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })

	witnesses := map[string]string{} // key → side it was inserted on
	paused := false
	for i := 0; i < ops; i++ {
		// Distinct commit times keep "later" well defined for the rule
		// (SQLite stamps with millisecond precision).
		time.Sleep(2 * time.Millisecond)
		switch r := rng.IntN(100); {
		case r < 3 && *convergenceKill:
			p.kill()
			p.start()
			paused = p.status("items") == "Paused"
		case r < 8 && *convergencePause:
			if paused {
				p.post("/api/v1/maps/items/run", map[string]any{})
				waitFor(t, "resumed", func() bool { return p.status("items") == "Running" })
				paused = false
			} else if p.status("items") == "Running" {
				p.post("/api/v1/maps/items/pause", map[string]any{})
				paused = true
			}
		case r < 14:
			side, db := "erp", erp
			if rng.IntN(2) == 0 {
				side, db = "crm", crm
			}
			k := fmt.Sprintf("W-%05d", i)
			witnesses[k] = side
			insertItem(t, db, side, k, witnessValues(k))
		default:
			side, db := "erp", erp
			if rng.IntN(2) == 0 {
				side, db = "crm", crm
			}
			k := keys[rng.IntN(len(keys))]
			exists := itemExists(t, db, side, k)
			switch op := rng.IntN(10); {
			case !exists:
				insertItem(t, db, side, k, randomValues(rng))
			case op < 2:
				deleteItem(t, db, side, k)
			default:
				updateItem(t, db, side, k, randomValues(rng))
			}
		}
	}
	if paused {
		p.post("/api/v1/maps/items/run", map[string]any{})
	}
	waitFor(t, "items running at the end", func() bool { return p.status("items") == "Running" })

	var lastDiff string
	deadline := time.Now().Add(90 * time.Second)
	for {
		l, r := dumpItems(t, erp, crm)
		if lastDiff = diffDumps(l, r); lastDiff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sides did not converge:\n%s\nengine warnings and errors:\n%s", lastDiff, problemsIn(logs.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Quiescent: an echo would keep changes flowing after convergence.
	// After a late SIGKILL the restarted engine may still apply, once, a
	// transaction the target already holds (redelivered from the last
	// acknowledged position and skipped by the target, but counted), so
	// the count must settle, not stay put from the first look.
	var counts []int64
	for quiet := false; !quiet; {
		before := appliedCount(t, p)
		time.Sleep(500 * time.Millisecond)
		after := appliedCount(t, p)
		counts = append(counts, after)
		quiet = after == before
		if !quiet && len(counts) == 10 {
			t.Fatalf("changes keep flowing after convergence: applied %v", counts)
		}
	}
	l, r := dumpItems(t, erp, crm)
	if d := diffDumps(l, r); d != "" {
		t.Fatalf("sides differ again after converging:\n%s", d)
	}
	for k := range witnesses {
		want := itemString(k, witnessValues(k))
		if l[k] != want {
			t.Errorf("witness %s (inserted on %s) = %q, want %q: a change was lost", k, witnesses[k], l[k], want)
		}
	}
	// No duplicates: the unique keys hold on both sides, and each has
	// exactly the rows of the other.
	if n, m := countRows(t, erp, "items"), countRows(t, crm, "item"); n != m {
		t.Fatalf("row counts differ: erp %d, crm %d", n, m)
	}
}

// trimDecimal drops trailing fraction zeros ("1.2500" → "1.25") so that a
// DECIMAL(19,4) read from a server compares with the value written.
func trimDecimal(s sql.NullString) sql.NullString {
	if s.Valid && strings.Contains(s.String, ".") && !strings.ContainsAny(s.String, "eE") {
		s.String = strings.TrimRight(strings.TrimRight(s.String, "0"), ".")
	}
	return s
}

package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault tests: live sync under a steady write load on both sides while the
// engine is SIGKILLed or a database server crashes and restarts. Writers
// keep an oracle of what they committed; afterwards both sides must hold
// exactly the oracle's rows, and a PostgreSQL slot must have confirmed
// the source's last change.

const (
	// faultLoadFor is how long the writers run; the fault strikes at
	// 40% of it and the load goes on after it.
	faultLoadFor = 6 * time.Second
	// faultWriteEvery paces each writer (two writers: up to 400 writes/s).
	faultWriteEvery = 5 * time.Millisecond
	// faultHandover is how long after its insert a row handed to the other
	// side's writer waits before that writer updates it. MariaDB stamps a
	// commit with whole seconds: an update within the insert's second
	// could carry an earlier stamp than the insert and rightly lose under
	// the conflict rule, and the oracle would not know.
	faultHandover = 1500 * time.Millisecond
	// faultRetryFor bounds how long a writer retries one statement while
	// its server is down.
	faultRetryFor = 90 * time.Second
)

// TestFaultEngineKillUnderLoad SIGKILLs the engine twice in the middle of
// live sync under load and restarts it: PostgreSQL ↔ PostgreSQL and
// PostgreSQL ↔ MariaDB.
func TestFaultEngineKillUnderLoad(t *testing.T) {
	for _, right := range []string{"postgres", "mysql"} {
		t.Run("postgres-"+right, func(t *testing.T) {
			leftDSN, erp := serverDB(t, "postgres", "")
			rightDSN, crm := serverDB(t, right, "")
			f := newFaultLink(t, faultSide{driver: "postgres", dsn: leftDSN, db: erp}, faultSide{driver: right, dsn: rightDSN, db: crm})
			f.run(func() {
				f.p.kill()
				t.Log("engine killed (SIGKILL)")
				time.Sleep(300 * time.Millisecond) // changes pile up meanwhile
				f.p.start()
				time.Sleep(1500 * time.Millisecond)
				f.p.kill()
				t.Log("engine killed again (SIGKILL)")
				f.p.start()
			})
			f.check()
			f.checkNeverHidden(false)
			f.checkSlot(0, openPGAdmin(t, "postgres://postgres@127.0.0.1:5432/postgres"))
			if right == "postgres" {
				f.checkSlot(1, openPGAdmin(t, "postgres://postgres@127.0.0.1:5432/postgres"))
			}
		})
	}
}

// TestFaultPostgresRestartUnderLoad restarts the left side's PostgreSQL
// server cleanly (pg_ctl restart -m fast), then crashes and restarts it
// (-m immediate: no shutdown checkpoint, crash recovery at start), under
// load. The server is a private one; the right side is the shared
// PostgreSQL.
func TestFaultPostgresRestartUnderLoad(t *testing.T) {
	pg := startPrivatePG(t)
	leftDSN, erp := pg.createDB(t)
	rightDSN, crm := serverDB(t, "postgres", "")
	f := newFaultLink(t, faultSide{driver: "postgres", dsn: leftDSN, db: erp}, faultSide{driver: "postgres", dsn: rightDSN, db: crm})
	f.run(func() {
		// Fast first, while capture streams: the server waits for capture
		// to confirm everything sent before it stops.
		down := time.Now()
		pg.restart("fast")
		f.serverDown(down, time.Now())
		t.Log("left PostgreSQL restarted (-m fast)")
		time.Sleep(1500 * time.Millisecond)
		down = time.Now()
		pg.restart("immediate")
		f.serverDown(down, time.Now())
		t.Log("left PostgreSQL crashed and restarted (-m immediate)")
	})
	f.check()
	f.checkNeverHidden(true)
	f.checkSlot(0, openPGAdmin(t, pg.dsn("postgres")))
	f.checkSlot(1, openPGAdmin(t, "postgres://postgres@127.0.0.1:5432/postgres"))
}

// TestFaultMariaDBRestartUnderLoad SIGKILLs the right side's MariaDB
// server under load and starts it again on the same port and data
// directory. The server is a private one; the left side is the shared
// PostgreSQL.
func TestFaultMariaDBRestartUnderLoad(t *testing.T) {
	my := startPrivateMariaDB(t)
	leftDSN, erp := serverDB(t, "postgres", "")
	rightDSN, crm := my.createDB(t)
	f := newFaultLink(t, faultSide{driver: "postgres", dsn: leftDSN, db: erp}, faultSide{driver: "mysql", dsn: rightDSN, db: crm})
	f.run(func() {
		down := time.Now()
		my.kill()
		t.Log("right MariaDB killed (SIGKILL)")
		time.Sleep(time.Second) // the server stays down a while
		my.start()
		f.serverDown(down, time.Now())
		t.Log("right MariaDB started again")
	})
	f.check()
	f.checkNeverHidden(true)
	f.checkSlot(0, openPGAdmin(t, "postgres://postgres@127.0.0.1:5432/postgres"))
}

// The items map of the fault tests: the right side has a surrogate
// primary key and the integration key in a unique column.
const faultLeftTable = `CREATE TABLE items (code VARCHAR(40) PRIMARY KEY, name TEXT, qty INTEGER)`

func faultRightTable(driver string) string {
	id := "itemid UUID PRIMARY KEY DEFAULT gen_random_uuid()"
	if driver == "mysql" {
		id = "itemid UUID PRIMARY KEY DEFAULT (UUID())"
	}
	return `CREATE TABLE item (` + id + `, itemcode VARCHAR(40) NOT NULL UNIQUE, title TEXT, quantity INTEGER)`
}

const faultConfig = `link:
  name: %[7]s
  left:  {name: erp, driver: %[1]s, dsn: "%[2]s"}
  right: {name: crm, driver: %[3]s, dsn: "%[4]s"}
engine:
  data_dir: "%[5]s/state"
  listen: "%[6]s"
maps:
  - name: items
    left: items
    right: item
    key: [{left: code, right: itemcode}]
    columns:
      - {left: code, right: itemcode}
      - {left: name, right: title}
      - {left: qty, right: quantity}
`

// faultSQL writes a statement with ? placeholders for driver: $n on
// PostgreSQL.
func faultSQL(driver, q string) string {
	if driver != "postgres" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// faultSide is one side of the items link as the writers see it.
type faultSide struct {
	driver string // postgres or mysql
	dsn    string
	db     *sql.DB // the application's connection
}

// Table and column names of each side of the items map.
var faultCols = [2]struct{ name, table, key, title, qty, prefix string }{
	{name: "erp", table: "items", key: "code", title: "name", qty: "qty", prefix: "L"},
	{name: "crm", table: "item", key: "itemcode", title: "title", qty: "quantity", prefix: "R"},
}

// faultLink is the items map between two server sides, running, with
// its load's oracle.
type faultLink struct {
	t     *testing.T
	link  string
	p     *engineProc
	sides [2]faultSide
	o     *faultOracle
	fence [2]string // the fence transaction's WAL insert position, per PostgreSQL side
	seen  *viewSamples
}

func newFaultLink(t *testing.T, left, right faultSide) *faultLink {
	t.Helper()
	mustExec(t, left.db, faultLeftTable)
	mustExec(t, right.db, faultRightTable(right.driver))
	dir := t.TempDir()
	link := fmt.Sprintf("fault%d", rand.Uint32())
	for _, s := range []faultSide{left, right} {
		if s.driver != "postgres" {
			continue
		}
		// Registered before the engine's cleanup, so this runs after the
		// map was stopped: the replication origins the engine's apply used
		// on this server are dropped, even one its just-closed session
		// still held when the map was stopped. Each keeps one of the
		// server's max_replication_slots replication states.
		db := s.db
		t.Cleanup(func() {
			_, _ = db.Exec(`SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE $1`, "dw_"+link+"_%")
		})
	}
	p := serveConfig(t, dir, func(api string) string {
		return fmt.Sprintf(faultConfig, left.driver, left.dsn, right.driver, right.dsn, dir, api, link)
	})
	if *convergenceDebug != "" {
		// -dw.debug: keep the engine's debug log, one file per test.
		logs := p.logs
		t.Cleanup(func() {
			b, _ := os.ReadFile(logs.Name())
			_ = os.WriteFile(*convergenceDebug+"."+strings.ReplaceAll(t.Name(), "/", "_"), b, 0o644)
		})
	}
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })
	return &faultLink{t: t, link: link, p: p, sides: [2]faultSide{left, right}, o: &faultOracle{vals: map[string]string{}}}
}

// run drives both writers for faultLoadFor, calls fault at 40% of it, and
// then writes a fence row on each side.
func (f *faultLink) run(fault func()) {
	t := f.t
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The writers stop before the test goes on, or ends on a failed fault.
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWriters()
	writers := [2]*faultWriter{}
	for i := range writers {
		w := &faultWriter{t: t, idx: i, side: f.sides[i], o: f.o, rng: rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))}
		w.side.db.SetMaxOpenConns(2)
		writers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(stop)
		}()
	}
	f.seen = watchViews(f.p)
	defer f.seen.stop()
	start := time.Now()
	time.Sleep(faultLoadFor * 4 / 10)
	faultAt := time.Since(start)
	fault()
	faultTook := time.Since(start) - faultAt
	// The load goes on after the fault, at least a few seconds.
	time.Sleep(max(faultLoadFor*6/10, 3*time.Second))
	f.seen.loadEnded()
	stopWriters()
	for i, w := range writers {
		t.Logf("%s writer: %d inserts, %d updates, %d updates of rows handed over by the other side, %d statements with an unknown outcome (re-checked)",
			faultCols[i].name, w.inserts, w.updates, w.handedUpdates, w.uncertain)
	}
	t.Logf("fault at %v, took %v; load ran %v", faultAt.Round(time.Millisecond), faultTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	for i, w := range writers {
		f.fence[i] = w.writeFence()
	}
}

// check waits until both sides hold exactly the oracle's rows, then
// requires no duplicate keys, equal row counts, no catch-up errors, a
// Running map and no changes flowing any more.
func (f *faultLink) check() {
	t := f.t
	t.Helper()
	want := f.o.snapshot()
	began := time.Now()
	var diff string
	deadline := time.Now().Add(120 * time.Second)
	for {
		l := dumpFaultSide(t, f.sides[0], 0)
		r := dumpFaultSide(t, f.sides[1], 1)
		if diff = diffOracle(want, l, r); diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sides did not converge to what the writers committed:\n%s\nmap: %s\nengine warnings and errors:\n%s", diff, f.mapInfo(), problemsIn(f.p.logs.Name()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, s := range f.sides {
		c := faultCols[i]
		var n, distinct int
		if err := s.db.QueryRow(fmt.Sprintf("SELECT count(*), count(DISTINCT %s) FROM %s", c.key, c.table)).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != len(want) || distinct != n {
			t.Fatalf("%s holds %d rows with %d distinct keys, want %d", c.name, n, distinct, len(want))
		}
	}
	v := f.mapView()
	if v.Status != "Running" || v.CatchUpErrors != 0 || v.InitErrors != 0 || v.Condition != nil {
		t.Fatalf("map after the fault: %s\nengine warnings and errors:\n%s", f.mapInfo(), problemsIn(f.p.logs.Name()))
	}
	// Quiescent: an echo would keep changes flowing after convergence.
	before := f.mapView().applied()
	time.Sleep(500 * time.Millisecond)
	if after := f.mapView().applied(); after != before {
		t.Fatalf("changes keep flowing after convergence: %d → %d applied", before, after)
	}
	t.Logf("converged %v after the load: %d rows on each side, as committed", time.Since(began).Round(time.Millisecond), len(want))
}

// checkSlot waits until the replication slot of side i confirms the
// side's fence transaction, the last change written there.
func (f *faultLink) checkSlot(i int, admin *sql.DB) {
	t := f.t
	t.Helper()
	lsn := f.fence[i]
	if lsn == "" {
		t.Fatalf("no fence position recorded for %s", faultCols[i].name)
	}
	pattern := "dw_" + f.link + "_" + faultCols[i].name + "_%"
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		var ok sql.NullBool
		var confirmed sql.NullString
		err := admin.QueryRow(`SELECT count(*), bool_and(confirmed_flush_lsn >= $1::pg_lsn), max(confirmed_flush_lsn)::text
			FROM pg_replication_slots WHERE slot_name LIKE $2`, lsn, pattern).Scan(&n, &ok, &confirmed)
		if err == nil && n == 1 && ok.Bool {
			t.Logf("slot of %s confirmed %s, past the fence at %s", faultCols[i].name, confirmed.String, lsn)
			return
		}
		last = fmt.Sprintf("%d slots like %s, confirmed_flush_lsn %s, err %v", n, pattern, confirmed.String, err)
		if time.Now().After(deadline) {
			t.Fatalf("the slot of %s never confirmed the fence at %s: %s", faultCols[i].name, lsn, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type faultMapView struct {
	Status        string           `json:"status"`
	CatchUpErrors int64            `json:"catch_up_errors"`
	InitErrors    int64            `json:"init_errors"`
	QueueDepth    int64            `json:"queue_depth"`
	Problems      []string         `json:"problems"`
	Applied       map[string]int64 `json:"applied"`
	Condition     *conditionJSON   `json:"condition"`
}

// applied is the number of changes applied in both directions.
func (v faultMapView) applied() int64 {
	var n int64
	for _, x := range v.Applied {
		n += x
	}
	return n
}

func (f *faultLink) mapView() faultMapView {
	var v faultMapView
	resp, err := f.p.do("GET", "/api/v1/maps/items", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *faultLink) mapInfo() string {
	v := f.mapView()
	return fmt.Sprintf("status %s, condition %+v, %d catch-up errors, %d initial sync errors, queue depth %d, problems %v", v.Status, v.Condition, v.CatchUpErrors, v.InitErrors, v.QueueDepth, v.Problems)
}

// faultOracle is what the writers know they committed: per key, the last
// value, and per writer the keys it may update.
type faultOracle struct {
	mu    sync.Mutex
	vals  map[string]string // key → "title|qty" as last committed
	owned [2][]ownedKey
}

// ownedKey is a key one writer alone updates, from ripe on.
type ownedKey struct {
	key  string
	ripe time.Time
}

func (o *faultOracle) set(key, val string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.vals[key] = val
}

func (o *faultOracle) own(w int, key string, ripe time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.owned[w] = append(o.owned[w], ownedKey{key, ripe})
}

// pick returns a random ripe key writer w owns.
func (o *faultOracle) pick(w int, rng *rand.Rand) (ownedKey, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.owned[w]) == 0 {
		return ownedKey{}, false
	}
	k := o.owned[w][rng.IntN(len(o.owned[w]))]
	return k, !time.Now().Before(k.ripe)
}

func (o *faultOracle) snapshot() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]string, len(o.vals))
	for k, v := range o.vals {
		out[k] = v
	}
	return out
}

// faultWriter is the application on one side: single-row inserts of its
// own keys and updates of the keys it owns, each an autocommit statement.
// A key belongs to one writer at a time, so its final value is the
// last one that writer committed whatever order the engine sees the
// sides in. Every fourth inserted key is handed to the other side's
// writer, which updates it from then on (rows of the other side).
type faultWriter struct {
	t    *testing.T
	idx  int
	side faultSide
	o    *faultOracle
	rng  *rand.Rand
	seq  int
	next int // number of the next key to insert

	inserts, updates, handedUpdates, uncertain int
}

func (w *faultWriter) run(stop <-chan struct{}) {
	tick := time.NewTicker(faultWriteEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if err := w.step(); err != nil {
			w.t.Errorf("%s writer: %v", faultCols[w.idx].name, err)
			return
		}
	}
}

// step makes one write: an insert (30%, or when no owned key is ripe) or
// an update of an owned key.
func (w *faultWriter) step() error {
	c := faultCols[w.idx]
	if w.rng.IntN(10) >= 3 {
		if k, ok := w.o.pick(w.idx, w.rng); ok {
			val := w.value()
			done, err := w.write(false, k.key, val)
			if err != nil {
				return err
			}
			if done {
				w.o.set(k.key, val)
				w.updates++
				if !strings.HasPrefix(k.key, c.prefix) {
					w.handedUpdates++
				}
			}
			return nil
		}
	}
	key := fmt.Sprintf("%s-%05d", c.prefix, w.next)
	w.next++
	val := w.value()
	if _, err := w.write(true, key, val); err != nil {
		return err
	}
	w.o.set(key, val)
	w.inserts++
	if w.next%4 == 0 {
		w.o.own(1-w.idx, key, time.Now().Add(faultHandover))
	} else {
		w.o.own(w.idx, key, time.Now())
	}
	return nil
}

// value is a value no other write of the test uses: "title|qty".
func (w *faultWriter) value() string {
	w.seq++
	return fmt.Sprintf("%s%d|%d", faultCols[w.idx].prefix, w.seq, w.seq)
}

// splitValue splits "title|qty".
func splitValue(val string) (string, int) {
	title, qty, _ := strings.Cut(val, "|")
	n, _ := strconv.Atoi(qty)
	return title, n
}

// write inserts key with val, or updates it to val, and reports whether a
// row was written (an update of a handed-over row not yet on this side
// writes none). A statement that fails may still have committed (the
// server can die between the commit and the reply): the row is read back,
// and the statement only runs again when its value is not there.
func (w *faultWriter) write(insert bool, key, val string) (bool, error) {
	c := faultCols[w.idx]
	title, qty := splitValue(val)
	q := fmt.Sprintf("UPDATE %s SET %s = ?, %s = ? WHERE %s = ?", c.table, c.title, c.qty, c.key)
	args := []any{title, qty, key}
	if insert {
		q = fmt.Sprintf("INSERT INTO %s (%s, %s, %s) VALUES (?, ?, ?)", c.table, c.key, c.title, c.qty)
		args = []any{key, title, qty}
	}
	q = faultSQL(w.side.driver, q)
	deadline := time.Now().Add(faultRetryFor)
	res, err := w.side.db.Exec(q, args...)
	for err != nil {
		w.uncertain++
		if time.Now().After(deadline) {
			return false, fmt.Errorf("%s %s: %w (retried for %v)", strings.Fields(q)[0], key, err, faultRetryFor)
		}
		time.Sleep(50 * time.Millisecond)
		have, found, rerr := w.read(key)
		if rerr != nil {
			continue // the server is still down: read again later
		}
		if found && have == val {
			return true, nil // it did commit
		}
		res, err = w.side.db.Exec(q, args...)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

func (w *faultWriter) read(key string) (string, bool, error) {
	c := faultCols[w.idx]
	var title sql.NullString
	var qty sql.NullInt64
	err := w.side.db.QueryRow(faultSQL(w.side.driver, fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = ?", c.title, c.qty, c.table, c.key)), key).Scan(&title, &qty)
	if err == sql.ErrNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return fmt.Sprintf("%s|%d", title.String, qty.Int64), true, nil
}

// writeFence inserts the side's last row after the load. On PostgreSQL it
// returns the WAL insert position read inside the fence transaction,
// after its row: the slot has confirmed the fence once its
// confirmed_flush_lsn is at or past it.
func (w *faultWriter) writeFence() string {
	t := w.t
	t.Helper()
	c := faultCols[w.idx]
	key := c.prefix + "-fence"
	val := w.value()
	title, qty := splitValue(val)
	ctx := context.Background()
	tx, err := w.side.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("fence on %s: %v", c.name, err)
	}
	defer tx.Rollback()
	ins := faultSQL(w.side.driver, fmt.Sprintf("INSERT INTO %s (%s, %s, %s) VALUES (?, ?, ?)", c.table, c.key, c.title, c.qty))
	if _, err := tx.Exec(ins, key, title, qty); err != nil {
		t.Fatalf("fence on %s: %v", c.name, err)
	}
	var lsn string
	if w.side.driver == "postgres" {
		if err := tx.QueryRow("SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
			t.Fatalf("fence on %s: %v", c.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("fence on %s: commit: %v", c.name, err)
	}
	w.o.set(key, val)
	return lsn
}

// dumpFaultSide reads side i as key → "title|qty", failing on a key seen
// twice.
func dumpFaultSide(t *testing.T, s faultSide, i int) map[string]string {
	t.Helper()
	c := faultCols[i]
	rows, err := s.db.Query(fmt.Sprintf("SELECT %s, %s, %s FROM %s", c.key, c.title, c.qty, c.table))
	if err != nil {
		t.Fatalf("read %s: %v", c.name, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var key string
		var title sql.NullString
		var qty sql.NullInt64
		if err := rows.Scan(&key, &title, &qty); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[key]; dup {
			t.Fatalf("%s holds key %s twice", c.name, key)
		}
		out[key] = fmt.Sprintf("%s|%d", title.String, qty.Int64)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// diffOracle lists, for at most 30 keys, where a side differs from the
// oracle: a missing row, a row nobody committed, or another value.
func diffOracle(want, left, right map[string]string) string {
	keys := map[string]bool{}
	for _, m := range []map[string]string{want, left, right} {
		for k := range m {
			keys[k] = true
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	show := func(m map[string]string, k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return "<absent>"
	}
	var b strings.Builder
	n := 0
	for _, k := range sorted {
		wv, inWant := want[k]
		lv, inLeft := left[k]
		rv, inRight := right[k]
		if inWant && inLeft && inRight && lv == wv && rv == wv {
			continue
		}
		n++
		if n <= 30 {
			fmt.Fprintf(&b, "%s: committed %s, erp %s, crm %s\n", k, show(want, k), show(left, k), show(right, k))
		}
	}
	if n > 30 {
		fmt.Fprintf(&b, "... and %d more keys\n", n-30)
	}
	return b.String()
}

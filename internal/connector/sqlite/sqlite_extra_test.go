package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func nextTx(t *testing.T, cp connector.Capturer) change.Tx {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := cp.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return tx
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		decl  string
		kind  connector.Kind
		scale int
	}{
		{"INTEGER", connector.KindInt, -1},
		{"bigint", connector.KindInt, -1},
		{"UNSIGNED BIG INT", connector.KindInt, -1},
		{"REAL", connector.KindFloat, -1},
		{"double precision", connector.KindFloat, -1},
		{"FLOAT", connector.KindFloat, -1},
		{"NUMERIC", connector.KindDecimal, -1},
		{"DECIMAL(10,2)", connector.KindDecimal, 2},
		{"decimal(10)", connector.KindDecimal, 0},
		{"DECIMAL_TEXT(30,4)", connector.KindDecimal, 4},
		{`"DECIMAL TEXT"(12, 3)`, connector.KindDecimal, 3},
		{"BOOLEAN", connector.KindBool, -1},
		{"BLOB", connector.KindBytes, -1},
		{"DATE", connector.KindDate, -1},
		{"DATETIME", connector.KindTime, -1},
		{"TIMESTAMP", connector.KindTime, -1},
		{"UUID", connector.KindUUID, -1},
		{"JSON", connector.KindJSON, -1},
		{"VARCHAR(20)", connector.KindText, -1},
		{"", connector.KindText, -1},
		{"POINT", connector.KindText, -1},
	}
	for _, tc := range tests {
		t.Run(tc.decl, func(t *testing.T) {
			t.Parallel()
			k, s := kindOf(tc.decl)
			if k != tc.kind || s != tc.scale {
				t.Errorf("kindOf(%q) = %s, %d; want %s, %d", tc.decl, k, s, tc.kind, tc.scale)
			}
		})
	}
}

func TestFromStored(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	tests := []struct {
		name string
		col  colInfo
		in   any
		want any
	}{
		{"real decimal padded to scale", colInfo{connector.KindDecimal, 2}, 12.5, change.Decimal("12.50")},
		{"integer decimal padded", colInfo{connector.KindDecimal, 3}, int64(-7), change.Decimal("-7.000")},
		{"decimal without scale", colInfo{connector.KindDecimal, -1}, 0.1, change.Decimal("0.1")},
		{"text decimal kept", colInfo{connector.KindDecimal, 2}, "1.2345", change.Decimal("1.2345")},
		{"bool from int", colInfo{connector.KindBool, -1}, int64(1), true},
		{"bool from text", colInfo{connector.KindBool, -1}, "false", false},
		{"int from integral real", colInfo{connector.KindInt, -1}, 3.0, int64(3)},
		{"int from text", colInfo{connector.KindInt, -1}, " 42 ", int64(42)},
		{"float from int", colInfo{connector.KindFloat, -1}, int64(2), 2.0},
		{"time with T and zone", colInfo{connector.KindTime, -1}, "2024-01-02T03:04:05+02:00", utc("2024-01-02T01:04:05Z")},
		{"time with Z", colInfo{connector.KindTime, -1}, "2024-01-02T03:04:05.5Z", utc("2024-01-02T03:04:05.5Z")},
		{"time stored form", colInfo{connector.KindTime, -1}, "2024-01-02 03:04:05.123456789", utc("2024-01-02T03:04:05.123456789Z")},
		{"time from unix seconds", colInfo{connector.KindTime, -1}, int64(86400), utc("1970-01-02T00:00:00Z")},
		{"time from julianday()", colInfo{connector.KindTime, -1}, 2460379.812501447, utc("2024-03-10T07:30:00.125Z")},
		{"time from julianday() before 1970", colInfo{connector.KindTime, -1}, 2440423.345601852, utc("1969-07-20T20:17:40Z")},
		{"time from unixepoch('subsec')", colInfo{connector.KindTime, -1}, 1710055800.123, utc("2024-03-10T07:30:00.123Z")},
		{"time from float unix seconds with microseconds", colInfo{connector.KindTime, -1}, 1710055800.123456, utc("2024-03-10T07:30:00.123456Z")},
		{"time from negative float unix seconds", colInfo{connector.KindTime, -1}, -14240540.999999, utc("1969-07-20T04:17:39.000001Z")},
		{"date", colInfo{connector.KindDate, -1}, "2024-02-29", utc("2024-02-29T00:00:00Z")},
		{"uuid lower case", colInfo{connector.KindUUID, -1}, "ABCDEF00-0000-0000-0000-00000000000A", "abcdef00-0000-0000-0000-00000000000a"},
		{"json number stored as integer", colInfo{connector.KindJSON, -1}, int64(123), "123"},
		{"text from blob", colInfo{connector.KindText, -1}, []byte("hi"), "hi"},
		{"bytes from text", colInfo{connector.KindBytes, -1}, "hi", []byte("hi")},
		{"null", colInfo{connector.KindInt, -1}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := fromStored(tc.col, tc.in)
			if err != nil {
				t.Fatalf("fromStored(%#v): %v", tc.in, err)
			}
			switch w := tc.want.(type) {
			case time.Time:
				g, ok := got.(time.Time)
				if !ok || !g.Equal(w) || g.Location() != time.UTC {
					t.Errorf("got %#v, want %v UTC", got, w)
				}
			case []byte:
				if g, ok := got.([]byte); !ok || string(g) != string(w) {
					t.Errorf("got %#v, want %#v", got, w)
				}
			default:
				if got != tc.want {
					t.Errorf("got %T(%#v), want %T(%#v)", got, got, tc.want, tc.want)
				}
			}
		})
	}
	for _, bad := range []struct {
		col colInfo
		in  any
	}{
		{colInfo{connector.KindInt, -1}, "twelve"},
		{colInfo{connector.KindInt, -1}, 1.5},
		{colInfo{connector.KindTime, -1}, "yesterday"},
		{colInfo{connector.KindTime, -1}, math.NaN()},
		{colInfo{connector.KindTime, -1}, 1e300},
		{colInfo{connector.KindBool, -1}, "maybe"},
	} {
		if v, err := fromStored(bad.col, bad.in); err == nil {
			t.Errorf("fromStored(%s, %#v) = %#v, want an error", bad.col.kind, bad.in, v)
		}
	}
}

// Values written by an application in its own forms read back canonical.
func TestApplicationValues(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	ctx := testCtx(t)
	mustExec(t, db, `CREATE TABLE acct (id INTEGER PRIMARY KEY, amount DECIMAL(10,2), active BOOLEAN, seen DATETIME, born DATE, ref UUID, doc JSON)`)
	mustExec(t, db, `INSERT INTO acct VALUES (1, 12.5, 1, '2024-01-02T03:04:05Z', '1990-05-06', 'ABCDEF00-0000-0000-0000-00000000000A', '{"a":1}')`)
	mustExec(t, db, `INSERT INTO acct VALUES (2, '7', 0, '2024-01-02 03:04', '1990-05-06', NULL, '42')`)
	rows, err := c.Scan(ctx, connector.ScanRequest{Table: "acct", OrderBy: []string{"id"}})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows", len(rows))
	}
	r := rows[0]
	if r["amount"] != change.Decimal("12.50") || r["active"] != true || r["ref"] != "abcdef00-0000-0000-0000-00000000000a" || r["doc"] != `{"a":1}` {
		t.Errorf("row 1 = %v", r)
	}
	if tm, _ := r["seen"].(time.Time); !tm.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("seen = %v", r["seen"])
	}
	if tm, _ := r["born"].(time.Time); !tm.Equal(time.Date(1990, 5, 6, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("born = %v", r["born"])
	}
	r = rows[1]
	if r["amount"] != change.Decimal("7.00") || r["active"] != false || r["doc"] != "42" || r["ref"] != nil {
		t.Errorf("row 2 = %v", r)
	}
	// The engine's own writes land in the forms applications expect.
	if _, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{{
		Table: "acct", Op: connector.Upsert, Key: change.Row{"id": int64(3)}, Ref: 1,
		Values: change.Row{"active": true, "seen": time.Date(2024, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)), "born": time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)},
	}}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var active int64
	var seen, born string
	if err := db.QueryRow(`SELECT active, seen || '', born || '' FROM acct WHERE id = 3`).Scan(&active, &seen, &born); err != nil {
		t.Fatal(err)
	}
	if active != 1 || seen != "2024-01-02 02:04:05.0000006" || born != "2000-01-02" {
		t.Errorf("stored active=%d seen=%q born=%q", active, seen, born)
	}
}

// Times an application stores as numbers with SQLite's own functions
// read back as the same instants.
func TestApplicationNumericTimes(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	mustExec(t, db, `CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME)`)
	mustExec(t, db, `INSERT INTO ev VALUES
		(1, julianday('2024-03-10 07:30:00.125')),
		(2, julianday('1969-07-20 20:17:40.5')),
		(3, unixepoch('2024-03-10 07:30:00.123', 'subsec')),
		(4, unixepoch('1969-07-20 20:17:40')),
		(5, 1710055800.123456)`)
	rows, err := c.Scan(testCtx(t), connector.ScanRequest{Table: "ev", OrderBy: []string{"id"}})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	want := []time.Time{
		time.Date(2024, 3, 10, 7, 30, 0, 125_000_000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 40, 500_000_000, time.UTC),
		time.Date(2024, 3, 10, 7, 30, 0, 123_000_000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
		time.Date(2024, 3, 10, 7, 30, 0, 123_456_000, time.UTC),
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if got, ok := r["at"].(time.Time); !ok || !got.Equal(want[i]) {
			t.Errorf("row %d: at = %#v, want %v", i+1, r["at"], want[i])
		}
	}
}

func TestOpenCreatesFileAndReportsMissingTables(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "new.db")
	c, err := Open(ctx, path, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not created: %v", err)
	}
	for _, table := range []string{"account", "_dw_changes", "_dw_progress"} {
		if _, err := c.Describe(ctx, table); !errors.Is(err, connector.ErrNoTable) {
			t.Errorf("Describe(%s) = %v, want ErrNoTable", table, err)
		}
	}
	probs := c.Check(ctx, []string{"account"})
	if len(probs) != 1 || probs[0].Code != string(problem.UnknownTable) {
		t.Errorf("Check = %+v, want one %s", probs, problem.UnknownTable)
	}

	// A file: URI with its own parameters works too.
	uri := "file:" + filepath.Join(t.TempDir(), "uri.db") + "?cache=private"
	c2, err := Open(ctx, uri, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("Open(%s): %v", uri, err)
	}
	var mode string
	if err := c2.writer.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	c2.Close()

	_, err = Open(ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), Options{})
	if problem.CodeOf(err) != problem.ConnectionFailed {
		t.Errorf("Open in a missing directory: %v, want code %s", err, problem.ConnectionFailed)
	}
}

func TestTriggersFollowAddedColumn(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	ctx := testCtx(t)
	mustExec(t, db, `CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)`)
	cp, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"item"}})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	defer cp.Close()
	mustExec(t, db, `INSERT INTO item VALUES (1, 'a')`)
	tx := nextTx(t, cp)
	if len(tx.Changes) != 1 || len(tx.Changes[0].New) != 2 {
		t.Fatalf("first tx = %+v", tx)
	}

	mustExec(t, db, `ALTER TABLE item ADD COLUMN qty INTEGER`)
	// Written by the old trigger: the new column is not carried.
	mustExec(t, db, `INSERT INTO item VALUES (2, 'b', 5)`)
	tx = nextTx(t, cp)
	ch := tx.Changes[0]
	if _, ok := ch.New["qty"]; ok || !slices.Equal(ch.Unchanged, []string{"qty"}) {
		t.Errorf("change by the old trigger: New=%v Unchanged=%v, want qty absent and listed", ch.New, ch.Unchanged)
	}
	// The poll saw the schema change and recreated the triggers.
	mustExec(t, db, `UPDATE item SET qty = 6 WHERE id = 2`)
	tx = nextTx(t, cp)
	ch = tx.Changes[0]
	if ch.New["qty"] != int64(6) || ch.Old["qty"] != int64(5) || !ch.OldComplete || len(ch.Unchanged) != 0 {
		t.Errorf("change by the new trigger = %+v", ch)
	}

	// A new Capture recreates them as well, and is idempotent.
	mustExec(t, db, `ALTER TABLE item ADD COLUMN note TEXT`)
	for i := 0; i < 2; i++ {
		cp2, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"item"}, From: tx.Position})
		if err != nil {
			t.Fatalf("Capture again: %v", err)
		}
		cp2.Close()
	}
	var sqlText string
	if err := db.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = '_dw_trg_item_ins'`).Scan(&sqlText); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sqlText, `NEW."note"`) {
		t.Errorf("insert trigger does not carry the new column: %s", sqlText)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'`).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d triggers (%v), want 3", n, err)
	}

	// Tables no longer watched lose their triggers.
	mustExec(t, db, `CREATE TABLE other (id INTEGER PRIMARY KEY)`)
	cp3, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"other"}})
	if err != nil {
		t.Fatalf("Capture other: %v", err)
	}
	cp3.Close()
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'item'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("item still has %d triggers (%v)", n, err)
	}
}

func changeRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM _dw_changes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAckTrimsChangeLog(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	ctx := testCtx(t)
	mustExec(t, db, `CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)`)
	cp, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"item"}})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	defer cp.Close()
	mustExec(t, db, `INSERT INTO item VALUES (1, 'a'), (2, 'b')`)
	tx1 := nextTx(t, cp)
	mustExec(t, db, `INSERT INTO item VALUES (3, 'c')`)
	tx2 := nextTx(t, cp)
	if n := changeRows(t, db); n != 3 {
		t.Fatalf("%d change rows before Ack, want 3", n)
	}
	if err := cp.Ack(ctx, tx1.Position); err != nil {
		t.Fatal(err)
	}
	if n := changeRows(t, db); n != 1 {
		t.Errorf("%d change rows after the first Ack, want 1", n)
	}
	if err := cp.Ack(ctx, tx2.Position); err != nil {
		t.Fatal(err)
	}
	if n := changeRows(t, db); n != 0 {
		t.Errorf("%d change rows after the second Ack, want 0", n)
	}

	// Resuming before the acknowledged position, or past the log's end,
	// cannot be served.
	for _, from := range []change.Position{tx1.Position, {LSN: tx2.Position.LSN + 100}} {
		_, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"item"}, From: from})
		if !errors.Is(err, connector.ErrLogPurged) {
			t.Errorf("Capture from %v: %v, want ErrLogPurged", from, err)
		}
	}

	// Echo rows are trimmed by the capturer itself.
	if _, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		{Table: "item", Op: connector.Upsert, Key: change.Row{"id": int64(9)}, Values: change.Row{"name": "engine"}},
	}}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO item VALUES (4, 'd')`)
	tx := nextTx(t, cp)
	if len(tx.Changes) != 1 || tx.Changes[0].New["id"] != int64(4) {
		t.Errorf("tx = %+v, want only the application insert", tx)
	}
	if n := changeRows(t, db); n != 1 {
		t.Errorf("%d change rows, want 1 (the echo trimmed)", n)
	}
	if got := cp.(connector.EchoCounter).EchoesSuppressed(); got != 1 {
		t.Errorf("EchoesSuppressed = %d, want 1", got)
	}

	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' OR name IN ('_dw_changes', '_dw_capture_state')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("after Release %d triggers/tables remain (%v)", n, err)
	}
}

// The application keeps writing while the engine applies: both make
// progress (the busy timeout absorbs the lock), capture reports every
// application transaction once and in order, and none of the engine's.
func TestConcurrentApplicationAndEngine(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	ctx := testCtx(t)
	mustExec(t, db, `CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER)`)
	cp, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"item"}})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	defer cp.Close()

	const appTx, engineBatches = 200, 40
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < appTx; i++ {
			tx, err := db.BeginTx(ctx, nil)
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO item (id, name, qty) VALUES (?, 'app', 0)`, 1_000_000+i)
				if err == nil {
					_, err = tx.ExecContext(ctx, `UPDATE item SET qty = ? WHERE id = ?`, i, 1_000_000+i)
				}
				if err == nil {
					err = tx.Commit()
				} else {
					_ = tx.Rollback()
				}
			}
			if err != nil {
				errs <- fmt.Errorf("application tx %d: %w", i, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for b := 0; b < engineBatches; b++ {
			var writes []connector.Write
			for i := 0; i < 25; i++ {
				id := int64(b*25 + i)
				writes = append(writes, connector.Write{Table: "item", Op: connector.Upsert, Key: change.Row{"id": id}, Values: change.Row{"name": "engine"}, Ref: int(id)})
			}
			if _, err := c.Apply(ctx, connector.Batch{Stream: "s", Position: change.Position{LSN: uint64(b + 1)}, Writes: writes}); err != nil {
				errs <- fmt.Errorf("engine batch %d: %w", b, err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var got []change.Change
	var last change.Position
	for len(got) < 2*appTx {
		tx := nextTx(t, cp)
		if !last.Less(tx.Position) {
			t.Fatalf("position %v after %v", tx.Position, last)
		}
		last = tx.Position
		got = append(got, tx.Changes...)
	}
	if len(got) != 2*appTx {
		t.Fatalf("got %d changes, want %d", len(got), 2*appTx)
	}
	for i := 0; i < appTx; i++ {
		ins, upd := got[2*i], got[2*i+1]
		id := int64(1_000_000 + i)
		if ins.Op != change.Insert || ins.New["id"] != id || upd.Op != change.Update || upd.New["qty"] != int64(i) {
			t.Fatalf("changes %d,%d = %v %v / %v %v, want insert and update of %d", 2*i, 2*i+1, ins.Op, ins.New, upd.Op, upd.New, id)
		}
	}
	if n := cp.(connector.EchoCounter).EchoesSuppressed(); n != engineBatches*25 {
		t.Errorf("EchoesSuppressed = %d, want %d", n, engineBatches*25)
	}
	if n, err := c.Count(ctx, "item", change.Row{"name": "engine"}); err != nil || n != engineBatches*25 {
		t.Errorf("engine rows = %d (%v), want %d", n, err, engineBatches*25)
	}
	if pos, err := c.AppliedPosition(ctx, "s"); err != nil || pos.LSN != engineBatches {
		t.Errorf("AppliedPosition = %v (%v), want %d", pos, err, engineBatches)
	}
}

// A transaction larger than one poll is split at row boundaries, in order.
func TestLargeTransactionSplitsInOrder(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	ctx := testCtx(t)
	mustExec(t, db, `CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)`)
	cp, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"item"}})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	defer cp.Close()
	const n = maxPollRows + 1500
	mustExec(t, db, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) INSERT INTO item SELECT i, 'x' FROM s`, n)
	var got []change.Change
	var txs int
	var last change.Position
	for len(got) < n {
		tx := nextTx(t, cp)
		if len(tx.Changes) > maxPollRows || !last.Less(tx.Position) {
			t.Fatalf("tx of %d changes at %v after %v", len(tx.Changes), tx.Position, last)
		}
		last = tx.Position
		txs++
		got = append(got, tx.Changes...)
	}
	if txs != 2 || len(got) != n {
		t.Errorf("%d changes in %d txs, want %d in 2", len(got), txs, n)
	}
	for i, ch := range got {
		if ch.New["id"] != int64(i+1) {
			t.Fatalf("change %d has id %v", i, ch.New["id"])
		}
	}
}

// Wide tables need several json_object calls; text with NUL characters
// (which SQLite allows) survives capture.
func TestCaptureWideTableAndNUL(t *testing.T) {
	t.Parallel()
	c, db, _ := openTemp(t)
	ctx := testCtx(t)
	var cols []string
	for i := 0; i < 75; i++ {
		cols = append(cols, fmt.Sprintf("c%02d TEXT", i))
	}
	mustExec(t, db, `CREATE TABLE wide (id INTEGER PRIMARY KEY, `+strings.Join(cols, ", ")+`)`)
	cp, err := c.Capture(ctx, connector.CaptureOptions{Tables: []string{"wide"}})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	defer cp.Close()
	mustExec(t, db, `INSERT INTO wide (id, c00, c40, c74) VALUES (1, ?, 'n', NULL)`, "a\x00b\"'\\")
	ch := nextTx(t, cp).Changes[0]
	if len(ch.New) != 76 || ch.New["c00"] != "a\x00b\"'\\" || ch.New["c40"] != "n" || ch.New["c74"] != nil || ch.New["c73"] != nil {
		t.Errorf("New has %d columns: c00=%q c40=%v c74=%v", len(ch.New), ch.New["c00"], ch.New["c40"], ch.New["c74"])
	}
}

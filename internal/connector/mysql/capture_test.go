package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func capture(t *testing.T, c *Connector, from change.Position, tables ...string) *Capturer {
	t.Helper()
	cp, err := c.Capture(ctxT(t), connector.CaptureOptions{Tables: tables, From: from})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	t.Cleanup(func() { cp.Close() })
	return cp.(*Capturer)
}

func next(t *testing.T, cp connector.Capturer) change.Tx {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx, err := cp.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return tx
}

// expectNone checks that no transaction arrives within a short wait.
func expectNone(t *testing.T, cp connector.Capturer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if tx, err := cp.Next(ctx); err == nil {
		t.Fatalf("unexpected transaction %s: %+v", tx.Position, tx.Changes)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v", err)
	}
}

// TestCaptureTypes writes every supported type as an application would
// and checks that capture decodes exactly what a SELECT reads, and the
// canonical values themselves.
func TestCaptureTypes(t *testing.T) {
	t.Parallel()
	c, app, _ := openTest(t)
	mustExec(t, app, "CREATE TABLE typ (id int PRIMARY KEY, "+
		"ti tinyint, tu tinyint unsigned, su smallint unsigned, mu mediumint unsigned, iu int unsigned, "+
		"bi bigint, bu bigint unsigned, dec19 decimal(19,4), dneg decimal(8,3), fl float, db double, "+
		"vc varchar(100), ch char(10), tx text, lat varchar(20) CHARACTER SET latin1, "+
		"bn binary(4), vb varbinary(20), bl blob, "+
		"d date, dt datetime(6), dt0 datetime, ts timestamp(6) NULL, tm time(3), y year, "+
		"en enum('small','medium','large'), st set('a','b','c'), b1 bit(1), b10 bit(10), js json, u uuid, bo boolean)")
	cp := capture(t, c, change.Position{}, "typ")

	// The application writes TIMESTAMP in a non-UTC session zone.
	conn, err := app.Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctxT(t), "SET time_zone = '+05:30'"); err != nil {
		t.Fatal(err)
	}
	text := "it's \"quoted\" \\ back\\slash 😀 日本 é"
	if _, err := conn.ExecContext(ctxT(t), "INSERT INTO typ VALUES (1, -128, 255, 65535, 16777215, 4294967295, "+
		"-9223372036854775808, 18446744073709551615, 123456789012345.6789, -12.5, 1.1, 3.141592653589793, "+
		"?, 'abc', ?, 'café', x'0102', x'00ff00', x'deadbeef', "+
		"'2024-02-29', '1999-12-31 23:59:59.999999', '2020-01-02 03:04:05', '2024-05-06 12:38:09.123456', '-12:34:56.789', 2155, "+
		"'medium', 'a,c', b'1', b'1000000001', '{\"k\": [1, \"😀\"]}', '123e4567-e89b-12d3-a456-426614174000', true)", text, text); err != nil {
		t.Fatal(err)
	}
	mustExec(t, app, "INSERT INTO typ (id) VALUES (2)")
	mustExec(t, app, "INSERT INTO typ (id, bu, dec19, u, bn) VALUES (3, 9223372036854775807, -0.0001, 'ffffffff-0000-4000-8000-000000000001', x'00000000')")

	want := map[string]any{
		"id": int64(1), "ti": int64(-128), "tu": int64(255), "su": int64(65535), "mu": int64(16777215), "iu": int64(4294967295),
		"bi": int64(-9223372036854775808), "bu": change.Decimal("18446744073709551615"), "dec19": change.Decimal("123456789012345.6789"),
		"dneg": change.Decimal("-12.500"), "fl": float64(float32(1.1)), "db": 3.141592653589793,
		"vc": text, "ch": "abc", "tx": text, "lat": "café", "bn": []byte{1, 2, 0, 0}, "vb": []byte{0, 0xff, 0}, "bl": []byte{0xde, 0xad, 0xbe, 0xef},
		"d": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "dt": time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		"dt0": time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), "ts": time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
		"tm": "-12:34:56.789", "y": int64(2155), "en": "medium", "st": "a,c", "b1": true, "b10": []byte{0x02, 0x01},
		"js": `{"k": [1, "😀"]}`, "u": "123e4567-e89b-12d3-a456-426614174000", "bo": true,
	}
	var got []change.Change
	for len(got) < 3 {
		tx := next(t, cp)
		got = append(got, tx.Changes...)
	}
	scanned, err := c.Scan(ctxT(t), connector.ScanRequest{Table: "typ", OrderBy: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, ch := range got {
		if ch.Op != change.Insert || ch.Table != "typ" {
			t.Fatalf("change %d = %s %s", i, ch.Op, ch.Table)
		}
		if d := diff(scanned[i], ch.New); d != "" {
			t.Errorf("row %d: capture differs from SELECT: %s", i+1, d)
		}
	}
	if d := diff(want, got[0].New); d != "" {
		t.Errorf("row 1: %s", d)
	}
	for n, v := range got[1].New {
		if n != "id" && v != nil {
			t.Errorf("row 2 column %s = %#v, want NULL", n, v)
		}
	}
	if v := got[2].New["bu"]; v != int64(9223372036854775807) {
		t.Errorf("bigint unsigned MaxInt64 = %#v, want int64", v)
	}
	if v := got[2].New["dec19"]; v != change.Decimal("-0.0001") {
		t.Errorf("decimal -0.0001 = %#v", v)
	}
	if v := got[2].New["bn"]; string(v.([]byte)) != "\x00\x00\x00\x00" {
		t.Errorf("binary(4) zeros = %x", v)
	}
}

func diff(want, got change.Row) string {
	var out []string
	for n, w := range want {
		g, ok := got[n]
		if !ok {
			out = append(out, n+": missing")
			continue
		}
		if fmt.Sprintf("%T %v", w, w) != fmt.Sprintf("%T %v", g, g) {
			out = append(out, fmt.Sprintf("%s: got %T(%#v), want %T(%#v)", n, g, g, w, w))
		}
	}
	if len(got) != len(want) {
		out = append(out, fmt.Sprintf("%d columns, want %d", len(got), len(want)))
	}
	return strings.Join(out, "; ")
}

// TestCaptureTransactionWhole: a multi-statement transaction over two
// tables arrives as one Tx, in order, with full old images.
func TestCaptureTransactionWhole(t *testing.T) {
	t.Parallel()
	c, app, _ := openTest(t)
	mustExec(t, app, "CREATE TABLE a (id int PRIMARY KEY, v varchar(10))")
	mustExec(t, app, "CREATE TABLE b (id int PRIMARY KEY, v varchar(10))")
	mustExec(t, app, "CREATE TABLE ignored (id int PRIMARY KEY)")
	cp := capture(t, c, change.Position{}, "a", "b")
	tx, err := app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"INSERT INTO a VALUES (1, 'x'), (2, 'y')", "INSERT INTO ignored VALUES (1)",
		"INSERT INTO b VALUES (1, 'z')", "UPDATE a SET v = 'x2' WHERE id = 1", "DELETE FROM b WHERE id = 1"} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := next(t, cp)
	var ops []string
	for _, ch := range got.Changes {
		ops = append(ops, ch.Op.String()+" "+ch.Table)
	}
	if want := "insert a,insert a,insert b,update a,delete b"; strings.Join(ops, ",") != want {
		t.Fatalf("changes = %v, want %s", ops, want)
	}
	upd := got.Changes[3]
	if upd.Old["v"] != "x" || upd.New["v"] != "x2" || !upd.OldComplete {
		t.Errorf("update = %+v", upd)
	}
	if got.Position.Token == "" || !strings.Contains(got.Position.Token, "|") {
		t.Errorf("position %v has no file and GTID", got.Position)
	}
	expectNone(t, cp)
}

// TestEchoSuppressed: the engine's writes through Apply are not captured,
// and are counted.
func TestEchoSuppressed(t *testing.T) {
	t.Parallel()
	c, app, _ := openTest(t)
	mustExec(t, app, "CREATE TABLE e (id bigint PRIMARY KEY, v varchar(10))")
	cp := capture(t, c, change.Position{}, "e")
	_, err := c.Apply(ctxT(t), connector.Batch{Stream: "s", Position: change.Position{LSN: 5}, Writes: []connector.Write{
		{Table: "e", Op: connector.Upsert, Key: change.Row{"id": int64(1)}, Values: change.Row{"v": "engine"}},
		{Table: "e", Op: connector.Upsert, Key: change.Row{"id": int64(2)}, Values: change.Row{"v": "engine"}},
		{Table: "e", Op: connector.UpdateOnly, Key: change.Row{"id": int64(1)}, Values: change.Row{"v": "engine2"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, app, "INSERT INTO e VALUES (3, 'app')")
	tx := next(t, cp)
	if len(tx.Changes) != 1 || tx.Changes[0].New["v"] != "app" {
		t.Fatalf("first captured tx = %+v, want only the application's insert", tx.Changes)
	}
	if n := cp.EchoesSuppressed(); n != 3 {
		t.Errorf("EchoesSuppressed = %d, want 3", n)
	}
}

// TestResume: capture from a position continues right after it.
func TestResume(t *testing.T) {
	t.Parallel()
	c, app, _ := openTest(t)
	mustExec(t, app, "CREATE TABLE r (id int PRIMARY KEY)")
	cp := capture(t, c, change.Position{}, "r")
	for i := 1; i <= 4; i++ {
		mustExec(t, app, "INSERT INTO r VALUES (?)", i)
	}
	var txs []change.Tx
	for range 4 {
		txs = append(txs, next(t, cp))
	}
	for i := 1; i < len(txs); i++ {
		if !txs[i-1].Position.Less(txs[i].Position) {
			t.Fatalf("positions not increasing: %v then %v", txs[i-1].Position, txs[i].Position)
		}
	}
	if err := cp.Ack(ctxT(t), txs[1].Position); err != nil {
		t.Fatal(err)
	}
	cp.Close()
	// Resume from the second transaction, once with the full token and
	// once with the LSN only.
	for _, from := range []change.Position{txs[1].Position, {LSN: txs[1].Position.LSN}} {
		cp2 := capture(t, c, from, "r")
		for _, want := range []int64{3, 4} {
			tx := next(t, cp2)
			if len(tx.Changes) != 1 || tx.Changes[0].New["id"] != want {
				t.Fatalf("from %v: got %+v, want id %d", from, tx.Changes, want)
			}
		}
		expectNone(t, cp2)
		cp2.Close()
	}
}

// TestReconnect: killing the replication connection loses nothing.
func TestReconnect(t *testing.T) {
	t.Parallel()
	c, app, _ := openTest(t)
	mustExec(t, app, "CREATE TABLE k (id int PRIMARY KEY)")
	cp := capture(t, c, change.Position{}, "k")
	mustExec(t, app, "INSERT INTO k VALUES (1)")
	first := next(t, cp)
	if err := cp.Ack(ctxT(t), first.Position); err != nil {
		t.Fatal(err)
	}
	mustExec(t, app, "INSERT INTO k VALUES (2)")
	second := next(t, cp) // handed out, not acknowledged
	cp.mu.Lock()
	id := cp.conn.ConnectionID()
	cp.mu.Unlock()
	mustExec(t, app, fmt.Sprintf("KILL %d", id))
	mustExec(t, app, "INSERT INTO k VALUES (3)")
	// After the reconnect, capture resumes after the acknowledged
	// transaction: 2 comes again (the engine dedupes by position), then 3.
	var ids []int64
	for len(ids) == 0 || ids[len(ids)-1] != 3 {
		tx := next(t, cp)
		if tx.Position.Less(second.Position) {
			t.Fatalf("redelivered %v, before the unacknowledged %v", tx.Position, second.Position)
		}
		ids = append(ids, tx.Changes[0].New["id"].(int64))
	}
	if fmt.Sprint(ids) != "[2 3]" && fmt.Sprint(ids) != "[3]" {
		t.Errorf("after reconnect got ids %v, want [2 3]", ids)
	}
}

func TestCapturePurged(t *testing.T) {
	t.Parallel()
	c, _, _ := openTest(t)
	_, err := c.Capture(ctxT(t), connector.CaptureOptions{Tables: []string{"x"}, From: change.Position{LSN: 4, Token: "mysql-bin.000000"}})
	if !errors.Is(err, connector.ErrLogPurged) || problem.CodeOf(err) != problem.LogPurged {
		t.Fatalf("err = %v, want ErrLogPurged with %s", err, problem.LogPurged)
	}
}

func TestCheckAndLag(t *testing.T) {
	t.Parallel()
	c, app, name := openTest(t)
	mustExec(t, app, "CREATE TABLE l (id int PRIMARY KEY)")
	if probs := c.Check(ctxT(t), []string{"l"}); len(probs) != 0 {
		t.Fatalf("Check as root = %+v, want none", probs)
	}
	if probs := c.Check(ctxT(t), []string{"missing"}); len(probs) != 1 || probs[0].Code != string(problem.UnknownTable) {
		t.Errorf("Check(missing table) = %+v", probs)
	}

	// A user with only database privileges lacks the replication ones.
	user := fmt.Sprintf("dw_user_%08x", rand.Uint32())
	mustExec(t, app, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'pw-1'", user))
	t.Cleanup(func() { app.Exec(fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
	mustExec(t, app, fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", name, user))
	limited, err := Open(ctxT(t), fmt.Sprintf("%s:pw-1@tcp(%s)/%s", user, c.cfg.Addr, name), Options{})
	if err != nil {
		t.Fatalf("Open as %s: %v", user, err)
	}
	defer limited.Close()
	probs := limited.Check(ctxT(t), []string{"l"})
	codes := map[string]int{}
	for _, p := range probs {
		codes[p.Code]++
		if !strings.Contains(p.Message, "GRANT") {
			t.Errorf("problem %s does not say what to do: %s", p.Code, p.Message)
		}
	}
	if codes[string(problem.MissingPrivilege)] != 2 || len(probs) != 2 {
		t.Errorf("Check as %s = %+v, want two %s", user, probs, problem.MissingPrivilege)
	}
	// The binlog client authenticates with mysql_native_password.
	mustExec(t, app, fmt.Sprintf("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '%s'@'%%'", user))
	// Global privileges apply to new connections: open again.
	limited.Close()
	limited, err = Open(ctxT(t), fmt.Sprintf("%s:pw-1@tcp(%s)/%s", user, c.cfg.Addr, name), Options{})
	if err != nil {
		t.Fatalf("Open as %s: %v", user, err)
	}
	defer limited.Close()
	if probs := limited.Check(ctxT(t), []string{"l"}); len(probs) != 0 {
		t.Errorf("Check after GRANT = %+v", probs)
	}
	cp := capture(t, limited, change.Position{}, "l")
	mustExec(t, app, "INSERT INTO l VALUES (1)")
	tx := next(t, cp)
	lag, err := limited.Lag(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if lag.Bytes <= 0 || lag.RetainedLog <= 0 {
		t.Errorf("Lag before Ack = %+v, want bytes > 0", lag)
	}
	if err := cp.Ack(ctxT(t), tx.Position); err != nil {
		t.Fatal(err)
	}
	// Other databases' writes may follow, so only bound the lag.
	if lag, err = limited.Lag(ctxT(t)); err != nil || lag.Seconds > 5 {
		t.Errorf("Lag after Ack = %+v, %v; want under 5 seconds", lag, err)
	}
}

// TestCaptureTruncate: a TRUNCATE of a watched table, however it is
// written, arrives as a truncate change in binlog order; one of a table
// that is not watched, or of the same name in another database, does not.
func TestCaptureTruncate(t *testing.T) {
	t.Parallel()
	c, app, name := openTest(t)
	mustExec(t, app, "CREATE TABLE `tr` (id int PRIMARY KEY)")
	mustExec(t, app, "CREATE TABLE `other` (id int PRIMARY KEY)")
	otherDB, _ := testDB(t)
	mustExec(t, app, "CREATE TABLE `"+otherDB+"`.tr (id int PRIMARY KEY)")
	cp := capture(t, c, change.Position{}, "tr")
	mustExec(t, app, "INSERT INTO tr VALUES (1)")
	mustExec(t, app, "/* nightly reload */ TRUNCATE TABLE `"+name+"`.`tr`")
	mustExec(t, app, "TRUNCATE other")
	mustExec(t, app, "TRUNCATE TABLE `"+otherDB+"`.tr")
	mustExec(t, app, "INSERT INTO tr VALUES (2)")
	mustExec(t, app, "truncate tr")
	var got []string
	for range 4 {
		tx := next(t, cp)
		for _, ch := range tx.Changes {
			s := ch.Op.String() + " " + ch.Table
			if ch.New != nil {
				s += fmt.Sprint(" ", ch.New["id"])
			}
			got = append(got, s)
		}
	}
	if want := "insert tr 1,truncate tr,insert tr 2,truncate tr"; strings.Join(got, ",") != want {
		t.Fatalf("changes = %v, want %s", got, want)
	}
	expectNone(t, cp)
}

// TestCaptureStatementFormat: a write to a watched table that the binary
// log holds as a statement (a session switched binlog_format) stops
// capture with DW1050 instead of being skipped; one to another table
// does not.
func TestCaptureStatementFormat(t *testing.T) {
	t.Parallel()
	c, app, _ := openTest(t)
	mustExec(t, app, "CREATE TABLE sf (id int PRIMARY KEY)")
	mustExec(t, app, "CREATE TABLE sf_other (id int PRIMARY KEY)")
	cp := capture(t, c, change.Position{}, "sf")
	conn, err := app.Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET SESSION binlog_format = 'STATEMENT'", "INSERT INTO sf_other VALUES (1)", "INSERT INTO sf VALUES (1)"} {
		if _, err := conn.ExecContext(ctxT(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx, err := cp.Next(ctx)
	if problem.CodeOf(err) != problem.ServerSetting || !strings.Contains(err.Error(), "binlog_format") {
		t.Fatalf("Next = %+v, %v; want a DW1050 error naming binlog_format", tx.Changes, err)
	}
}

package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func capture(t *testing.T, c *Connector, opts connector.CaptureOptions) connector.Capturer {
	t.Helper()
	cp, err := c.Capture(ctxT(t), opts)
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	t.Cleanup(func() { cp.Close() })
	return cp
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

// expectNone checks that no transaction arrives within d.
func expectNone(t *testing.T, cp connector.Capturer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tx, err := cp.Next(ctx)
	if err == nil {
		t.Fatalf("unexpected transaction %+v", tx)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want the context deadline", err)
	}
}

func utc(s string) time.Time {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return v.UTC()
}

func TestCaptureDecodesTypes(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TYPE mood AS ENUM ('happy', 'sad')`)
	env.exec(t, `CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)`)
	env.exec(t, `CREATE SCHEMA sales`)
	env.exec(t, `CREATE TABLE sales.everything (
		id int8 PRIMARY KEY, i2 int2, i4 int4, n numeric(30,6), f4 float4, f8 float8,
		t text, vc varchar(20), bp char(4), nm name, b bool, d date, ts timestamp, tstz timestamptz,
		u uuid, j json, jb jsonb, by bytea, arr int4[], iv interval, m mood, p posint)`)
	c := env.open(t)
	cp := capture(t, c, connector.CaptureOptions{Tables: []string{"sales.everything"}})

	env.exec(t, `SET TIME ZONE 'Asia/Kolkata'`)
	env.exec(t, `INSERT INTO sales.everything VALUES (1, -32768, 2147483647, 12345678901234567890.123456, 1.5, -2.25e-300,
		'unicode é 日本 😀', 'vc', 'ab', 'nm', true, '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.5+05:30',
		'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"a": 1}', '{"b": [1, 2]}', '\x00ff', '{1,2,3}', '1 day', 'sad', 7)`)
	env.exec(t, `INSERT INTO sales.everything (id) VALUES (2)`)

	tx := next(t, cp)
	if len(tx.Changes) != 1 {
		t.Fatalf("got %d changes, want 1", len(tx.Changes))
	}
	want := change.Row{
		"id": int64(1), "i2": int64(-32768), "i4": int64(2147483647), "n": change.Decimal("12345678901234567890.123456"),
		"f4": 1.5, "f8": -2.25e-300, "t": "unicode é 日本 😀", "vc": "vc", "bp": "ab  ", "nm": "nm", "b": true,
		"d": utc("2024-02-29T00:00:00Z"), "ts": utc("2024-02-29T13:14:15.123456Z"), "tstz": utc("2024-02-29T07:44:15.5Z"),
		"u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": `{"a": 1}`, "jb": `{"b": [1, 2]}`, "by": []byte{0, 0xff},
		"arr": "{1,2,3}", "iv": "1 day", "m": "sad", "p": int64(7),
	}
	ch := tx.Changes[0]
	if ch.Table != "sales.everything" || ch.Op != change.Insert {
		t.Fatalf("change = %s %s, want insert into sales.everything", ch.Op, ch.Table)
	}
	if !reflect.DeepEqual(ch.New, want) {
		for k := range want {
			if !reflect.DeepEqual(ch.New[k], want[k]) {
				t.Errorf("column %s = %#v, want %#v", k, ch.New[k], want[k])
			}
		}
	}
	if tx.Position.LSN == 0 || tx.CommitTime.IsZero() || tx.ID == "" {
		t.Errorf("tx position %v, commit time %v, id %q: want all set", tx.Position, tx.CommitTime, tx.ID)
	}
	if d := time.Since(tx.CommitTime); d < 0 || d > time.Minute {
		t.Errorf("commit time %v is not recent", tx.CommitTime)
	}

	tx2 := next(t, cp)
	if !tx.Position.Less(tx2.Position) {
		t.Errorf("positions %v then %v: want increasing", tx.Position, tx2.Position)
	}
	for k, v := range tx2.Changes[0].New {
		if k != "id" && v != nil {
			t.Errorf("column %s = %#v, want NULL", k, v)
		}
	}

	// Scan returns the same canonical values as capture.
	rows, err := c.Scan(ctxT(t), connector.ScanRequest{Table: "sales.everything", OrderBy: []string{"id"}, Limit: 1})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if !reflect.DeepEqual(rows[0], want) {
		t.Errorf("Scan = %#v\nwant %#v", rows[0], want)
	}
	tbl, err := c.Describe(ctxT(t), "sales.everything")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]connector.Kind{"p": connector.KindInt, "m": connector.KindText, "arr": connector.KindOther, "tstz": connector.KindTime, "bp": connector.KindText}
	for name, k := range kinds {
		if col, _ := tbl.Column(name); col.Kind != k {
			t.Errorf("column %s kind = %s, want %s", name, col.Kind, k)
		}
	}
}

func TestCaptureUpdatesDeletesToastAndAlter(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE doc (id int PRIMARY KEY, title text, body text)`)
	env.exec(t, `CREATE TABLE audit (id int PRIMARY KEY, note text)`)
	c := env.open(t)
	cp := capture(t, c, connector.CaptureOptions{Tables: []string{"doc", "public.audit"}, FullOld: []string{"public.audit"}})

	// A value large and incompressible enough to be stored out of line.
	var big strings.Builder
	for i := 0; big.Len() < 200_000; i++ {
		fmt.Fprintf(&big, "%x", uint64(i)*0x9E3779B97F4A7C15)
	}
	env.exec(t, `INSERT INTO doc VALUES (1, 'first', $1)`, big.String())
	if tx := next(t, cp); tx.Changes[0].New["body"] != big.String() {
		t.Fatalf("inserted body not captured in full")
	}

	env.exec(t, `UPDATE doc SET title = 'second' WHERE id = 1`)
	ch := next(t, cp).Changes[0]
	if ch.Op != change.Update || ch.New["title"] != "second" {
		t.Fatalf("update = %+v", ch)
	}
	if _, ok := ch.New["body"]; ok || !slices.Equal(ch.Unchanged, []string{"body"}) {
		t.Errorf("TOAST unchanged: New has body=%v, Unchanged=%v; want body absent and listed", ok, ch.Unchanged)
	}
	if !reflect.DeepEqual(ch.Old, change.Row{"id": int64(1)}) || ch.OldComplete {
		t.Errorf("Old = %v (complete %v), want the key only", ch.Old, ch.OldComplete)
	}

	// Key change: the K old tuple carries the old key.
	env.exec(t, `UPDATE doc SET id = 2 WHERE id = 1`)
	ch = next(t, cp).Changes[0]
	if !reflect.DeepEqual(ch.Old, change.Row{"id": int64(1)}) || ch.New["id"] != int64(2) {
		t.Errorf("key change: Old = %v, New id = %v", ch.Old, ch.New["id"])
	}

	// ALTER TABLE mid-stream: the new Relation message replaces the cached one.
	env.exec(t, `ALTER TABLE doc ADD COLUMN pages int DEFAULT 3`)
	env.exec(t, `INSERT INTO doc (id, title) VALUES (3, 'third')`)
	ch = next(t, cp).Changes[0]
	if ch.New["pages"] != int64(3) || ch.New["title"] != "third" {
		t.Errorf("after ALTER TABLE: New = %v", ch.New)
	}

	env.exec(t, `DELETE FROM doc WHERE id = 3`)
	ch = next(t, cp).Changes[0]
	if ch.Op != change.Delete || !reflect.DeepEqual(ch.Old, change.Row{"id": int64(3)}) || ch.New != nil {
		t.Errorf("delete = %+v, want Old = key only", ch)
	}

	// FullOld table: REPLICA IDENTITY FULL gives the complete old row.
	env.exec(t, `INSERT INTO audit VALUES (1, 'a')`)
	next(t, cp)
	env.exec(t, `UPDATE audit SET note = NULL`)
	ch = next(t, cp).Changes[0]
	if ch.Table != "public.audit" || !ch.OldComplete || !reflect.DeepEqual(ch.Old, change.Row{"id": int64(1), "note": "a"}) {
		t.Errorf("full old update = %+v", ch)
	}
	env.exec(t, `DELETE FROM audit`)
	ch = next(t, cp).Changes[0]
	if !ch.OldComplete || !reflect.DeepEqual(ch.Old, change.Row{"id": int64(1), "note": nil}) {
		t.Errorf("full old delete = %+v", ch)
	}

	// Several statements of one transaction arrive as one Tx, in order.
	env.exec(t, `BEGIN; INSERT INTO doc (id) VALUES (10); INSERT INTO audit VALUES (10, 'x'); UPDATE doc SET title = 't' WHERE id = 10; COMMIT`)
	tx := next(t, cp)
	var ops []string
	for _, ch := range tx.Changes {
		ops = append(ops, ch.Op.String()+" "+ch.Table)
	}
	if want := []string{"insert doc", "insert public.audit", "update doc"}; !slices.Equal(ops, want) {
		t.Errorf("one transaction = %v, want %v", ops, want)
	}

	// A truncate is a change of its table, in order, and the stream goes on.
	env.exec(t, `BEGIN; INSERT INTO doc (id) VALUES (11); TRUNCATE doc, audit; INSERT INTO doc (id) VALUES (12); COMMIT`)
	tx = next(t, cp)
	ops = nil
	for _, ch := range tx.Changes {
		ops = append(ops, ch.Op.String()+" "+ch.Table)
	}
	if want := []string{"insert doc", "truncate doc", "truncate public.audit", "insert doc"}; !slices.Equal(ops, want) {
		t.Errorf("truncating transaction = %v, want %v", ops, want)
	}
	env.exec(t, `INSERT INTO doc (id) VALUES (13)`)
	if ch := next(t, cp).Changes[0]; ch.Op != change.Insert || ch.New["id"] != int64(13) {
		t.Errorf("after TRUNCATE: %+v, want the insert of 13", ch)
	}
}

func TestEchoSuppression(t *testing.T) {
	t.Parallel()
	for _, mode := range []echoMode{echoOrigin, echoMessage} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			env.exec(t, `CREATE TABLE acct (id int8 PRIMARY KEY, name text)`)
			dsn := env.dsn
			if mode == echoMessage {
				// A role that may stream but not use replication origins:
				// the connector must fall back to marker messages.
				role := env.name + "_repl"
				adm := admin(t)
				for _, q := range []string{
					"CREATE ROLE " + role + " LOGIN REPLICATION",
					"ALTER DATABASE " + env.name + " OWNER TO " + role,
				} {
					if _, err := adm.Exec(q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				env.exec(t, "ALTER TABLE acct OWNER TO "+role)
				t.Cleanup(func() {
					// Objects the role owns must go before the role.
					_, _ = env.app.Exec("DROP SCHEMA IF EXISTS dualwrite CASCADE")
					_, _ = env.app.Exec("DROP TABLE IF EXISTS acct")
					_, _ = env.app.Exec("DROP PUBLICATION IF EXISTS " + env.name)
					_, _ = adm.Exec("ALTER DATABASE " + env.name + " OWNER TO postgres")
					dropRole(t, adm, role)
				})
				dsn = fmt.Sprintf("host=127.0.0.1 port=5432 user=%s dbname=%s sslmode=disable", role, env.name)
			}
			c := env.openDSN(t, dsn)
			cp := capture(t, c, connector.CaptureOptions{Tables: []string{"acct"}})
			ctx := ctxT(t)

			for i := 1; i <= 3; i++ {
				res, err := c.Apply(ctx, connector.Batch{Stream: "crm", Position: change.Position{LSN: uint64(i)}, Writes: []connector.Write{
					{Table: "acct", Op: connector.Upsert, Key: change.Row{"id": int64(i)}, Values: change.Row{"name": "engine"}},
				}})
				if err != nil || res.Skipped {
					t.Fatalf("Apply %d: %v, %+v", i, err, res)
				}
			}
			if c.echo != mode {
				t.Fatalf("echo mode = %s, want %s", c.echo, mode)
			}
			env.exec(t, `INSERT INTO acct VALUES (100, 'app')`)
			tx := next(t, cp)
			if len(tx.Changes) != 1 || tx.Changes[0].New["id"] != int64(100) {
				t.Fatalf("first captured tx = %+v, want the application's insert only", tx)
			}
			if n := cp.(connector.EchoCounter).EchoesSuppressed(); n != 3 {
				t.Errorf("EchoesSuppressed = %d, want 3", n)
			}
			// The engine's writes did land.
			if n, err := c.Count(ctx, "acct", change.Row{"name": "engine"}); err != nil || n != 3 {
				t.Errorf("Count = %d, %v; want 3", n, err)
			}
		})
	}
}

func slotState(t *testing.T, slot string) (confirmed pgrepl.LSN, active bool, found bool) {
	t.Helper()
	var s string
	err := admin(t).QueryRow("SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s, &active)
	if err != nil {
		return 0, false, false
	}
	l, err := pgrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l, active, true
}

func TestResumeAfterAck(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE item (id int PRIMARY KEY)`)
	c := env.open(t)
	opts := connector.CaptureOptions{Tables: []string{"item"}}
	cp := capture(t, c, opts)
	for i := 1; i <= 5; i++ {
		env.exec(t, `INSERT INTO item VALUES ($1)`, i)
	}
	var txs []change.Tx
	for i := 0; i < 5; i++ {
		txs = append(txs, next(t, cp))
	}
	acked := txs[1].Position
	if err := cp.Ack(ctxT(t), acked); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	// The server's confirmed_flush_lsn follows the Ack exactly.
	deadline := time.Now().Add(20 * time.Second)
	for {
		lsn, _, _ := slotState(t, env.name)
		if uint64(lsn) == acked.LSN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn = %s, want the acked %s", lsn, pgrepl.LSN(acked.LSN))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cp.Close()

	// A new capturer from the acked position sees exactly the rest.
	env.exec(t, `INSERT INTO item VALUES (6)`)
	opts.From = acked
	cp2 := capture(t, c, opts)
	for _, want := range []int64{3, 4, 5, 6} {
		tx := next(t, cp2)
		if got := tx.Changes[0].New["id"]; got != want {
			t.Fatalf("after resume got id %v, want %d", got, want)
		}
	}
	expectNone(t, cp2, 500*time.Millisecond)
	if lag, err := c.Lag(ctxT(t)); err != nil || lag.Bytes <= 0 || lag.RetainedLog < lag.Bytes {
		t.Errorf("Lag = %+v, %v; want bytes behind (the last 4 are not acked)", lag, err)
	}
}

func TestReconnectAfterLostConnection(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE item (id int PRIMARY KEY)`)
	c := env.open(t)
	cp := capture(t, c, connector.CaptureOptions{Tables: []string{"item"}})
	env.exec(t, `INSERT INTO item VALUES (1)`)
	env.exec(t, `INSERT INTO item VALUES (2)`)
	first := next(t, cp)
	if err := cp.Ack(ctxT(t), first.Position); err != nil {
		t.Fatal(err)
	}
	next(t, cp) // delivered, not acked: must not come again

	// Kill the walsender, as a server restart would.
	adm := admin(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := adm.QueryRow(`SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name = $1 AND active`, env.name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("walsender never active")
		}
		time.Sleep(50 * time.Millisecond)
	}
	env.exec(t, `INSERT INTO item VALUES (3)`)
	tx := next(t, cp)
	if got := tx.Changes[0].New["id"]; got != int64(3) {
		t.Fatalf("after reconnect got id %v, want 3 (nothing repeated, nothing lost)", got)
	}
}

func TestReleaseDropsSlotAndPublication(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE item (id int PRIMARY KEY)`)
	env.exec(t, `CREATE TABLE other (id int PRIMARY KEY)`)
	c := env.open(t)
	cp := capture(t, c, connector.CaptureOptions{Tables: []string{"item"}})
	cp.Close()
	// Capture again with a different table set: the publication follows.
	capture(t, c, connector.CaptureOptions{Tables: []string{"other", "item"}})
	var tables string
	if err := env.app.QueryRow(`SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = $1`, env.name).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != "item,other" {
		t.Errorf("publication tables = %s, want item,other", tables)
	}
	if _, _, found := slotState(t, env.name); !found {
		t.Fatal("slot missing while capturing")
	}
	// An apply session holds the side's replication origin.
	if _, err := c.Apply(ctxT(t), connector.Batch{Stream: "s", Position: change.Position{LSN: 1}, Writes: []connector.Write{
		{Table: "item", Op: connector.Upsert, Key: change.Row{"id": int64(1)}, Values: change.Row{}},
	}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.Release(ctxT(t)); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, _, found := slotState(t, env.name); found {
		t.Error("slot still exists after Release")
	}
	var n int
	if err := env.app.QueryRow(`SELECT count(*) FROM pg_publication WHERE pubname = $1`, env.name).Scan(&n); err != nil || n != 0 {
		t.Errorf("publication count = %d, %v; want 0", n, err)
	}
	// The origin goes too, though its session was closed just before.
	if err := env.app.QueryRow(`SELECT count(*) FROM pg_replication_origin WHERE roname = $1 OR roname LIKE $1 || '.%'`, env.name).Scan(&n); err != nil || n != 0 {
		t.Errorf("replication origins left = %d, %v; want 0", n, err)
	}
	// Resuming from a position without the slot is a purged log.
	_, err := c.Capture(ctxT(t), connector.CaptureOptions{Tables: []string{"item"}, From: change.Position{LSN: 1}})
	if !errors.Is(err, connector.ErrLogPurged) || problem.CodeOf(err) != problem.LogPurged {
		t.Errorf("Capture without slot from a position: %v, want DW2010 ErrLogPurged", err)
	}
	if _, _, found := slotState(t, env.name); found {
		t.Error("a failed Capture created a slot")
	}
}

func TestCheckPrivileges(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE owned_by_postgres (id int PRIMARY KEY)`)
	role := env.name + "_plain"
	adm := admin(t)
	if _, err := adm.Exec("CREATE ROLE " + role + " LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropRole(t, adm, role) })
	plain := env.openDSN(t, fmt.Sprintf("host=127.0.0.1 port=5432 user=%s dbname=%s sslmode=disable", role, env.name))
	probs := plain.Check(ctxT(t), []string{"owned_by_postgres", "missing_table"})
	var codes []string
	var text []string
	for _, p := range probs {
		codes = append(codes, p.Code)
		text = append(text, p.Message)
	}
	joined := strings.Join(text, "\n")
	if len(probs) != 3 || !strings.Contains(joined, "REPLICATION") || !strings.Contains(joined, "does not own table owned_by_postgres") ||
		!strings.Contains(joined, "GRANT CREATE") {
		t.Errorf("Check as a plain role = %v", probs)
	}
	for _, c := range codes {
		if c != string(problem.MissingPrivilege) {
			t.Errorf("code %s, want %s", c, problem.MissingPrivilege)
		}
	}
	// The superuser on a logical server has no problem.
	if probs := env.open(t).Check(ctxT(t), []string{"owned_by_postgres"}); len(probs) != 0 {
		t.Errorf("Check as superuser = %v, want none", probs)
	}
}

// dropRole drops a test role, retrying while its sessions end.
func dropRole(t *testing.T, adm *sql.DB, role string) {
	var err error
	for i := 0; i < 50; i++ {
		if _, err = adm.Exec("DROP ROLE IF EXISTS " + role); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("drop role %s: %v", role, err)
}

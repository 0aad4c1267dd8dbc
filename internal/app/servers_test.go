package app_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// serverDB creates an empty database on a real server and drops it when
// the test ends. It returns the engine's DSN and a connection as "the
// application", whose sessions use the time zone zone when it is not
// empty (on MariaDB without time zone tables: the zone's offset now).
func serverDB(t *testing.T, driver, zone string) (string, *sql.DB) {
	t.Helper()
	name := fmt.Sprintf("dw_test_conv_%d", rand.Uint32())
	var admin, dsn, sqlDriver string
	switch driver {
	case "postgres":
		admin, dsn, sqlDriver = "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/"+name, "pgx"
	case "mysql":
		admin, dsn, sqlDriver = "root@tcp(127.0.0.1:3306)/", "root@tcp(127.0.0.1:3306)/"+name, "mysql"
	}
	adm, err := sql.Open(sqlDriver, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database on %s: %v", driver, err)
	}
	appDSN := dsn
	switch {
	case zone == "":
	case driver == "postgres":
		appDSN += "?timezone=" + url.QueryEscape(zone)
	case driver == "mysql":
		var named int
		if err := adm.QueryRow("SELECT COUNT(*) FROM mysql.time_zone_name WHERE name = ?", zone).Scan(&named); err != nil {
			t.Fatal(err)
		}
		if named == 0 {
			zone = time.Now().In(mustZone(zone)).Format("-07:00")
		}
		appDSN += "?time_zone=" + url.QueryEscape("'"+zone+"'")
	}
	app, err := sql.Open(sqlDriver, appDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		app.Close()
		q := "DROP DATABASE IF EXISTS " + name
		if driver == "postgres" {
			q += " WITH (FORCE)"
			// A test that failed before stopping its map leaves a slot.
			_, _ = adm.Exec(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
			// And an engine killed with its maps running keeps its
			// replication origins, which count against the server's
			// max_replication_slots. Origins in use by a running test are
			// refused (55006) and stay; an idle one is re-created on use.
			rows, err := adm.Query(`SELECT roname FROM pg_replication_origin WHERE roname LIKE 'dw\_conv%'`)
			if err == nil {
				var names []string
				for rows.Next() {
					var n string
					if rows.Scan(&n) == nil {
						names = append(names, n)
					}
				}
				rows.Close()
				for _, n := range names {
					_, _ = adm.Exec(`SELECT pg_replication_origin_drop($1)`, n)
				}
			}
		}
		if _, err := adm.Exec(q); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
		adm.Close()
	})
	return dsn, app
}

const serverItemsLeft = `CREATE TABLE items (code VARCHAR(40) PRIMARY KEY, name TEXT, qty INTEGER, price DECIMAL(19,4), note TEXT, kind VARCHAR(8), seen_at TIMESTAMPTZ)`

func serverItemsRight(driver string) string {
	if driver == "sqlite" {
		// A text-affinity decimal keeps every digit in SQLite.
		return strings.Replace(itemsRight, "amount DECIMAL(19,4)", "amount DECIMAL_TEXT(19,4)", 1)
	}
	id, seen := "itemid UUID PRIMARY KEY DEFAULT gen_random_uuid()", "lastseen TIMESTAMPTZ"
	if driver == "mysql" {
		// DATETIME holding UTC is how CRMs on MariaDB keep their times
		// (SugarCRM, SuiteCRM, EspoCRM; Rails and Django applications by
		// default, those with (6) for microseconds): it spans the years
		// 1000 to 9999 where TIMESTAMP stops at 1970 and 2038, and no
		// session setting changes its values.
		id, seen = "itemid UUID PRIMARY KEY DEFAULT (UUID())", "lastseen DATETIME(6)"
	}
	return `CREATE TABLE item (` + id + `, itemcode VARCHAR(40) NOT NULL UNIQUE, title TEXT, quantity INTEGER, amount DECIMAL(19,4), remark TEXT, kindcode INTEGER, ` + seen + `)`
}

const serverItemsConfig = `link:
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
      - {left: price, right: amount}
      - {left: note, right: remark}
      - {left: kind, right: kindcode, value_map: {A: "1", B: "2"}}
      - {left: seen_at, right: lastseen}
`

// TestRandomizedConvergenceServers runs the randomized convergence test
// with log-based capture: PostgreSQL ↔ MariaDB, PostgreSQL ↔ PostgreSQL and
// PostgreSQL ↔ SQLite, SIGKILLs of the engine included.
func TestRandomizedConvergenceServers(t *testing.T) {
	for _, pair := range [][2]string{{"postgres", "mysql"}, {"postgres", "postgres"}, {"postgres", "sqlite"}} {
		t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
			seed := *convergenceSeed
			if seed == 0 {
				seed = uint64(time.Now().UnixNano())
			}
			ops := min(*convergenceOps, 200)
			t.Logf("seed %d (rerun with -dw.seed=%d), %d operations", seed, seed, ops)
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			// The applications' sessions are in different zones, none UTC.
			leftDSN, erp := serverDB(t, pair[0], "America/New_York")
			// The engine's own sessions must not depend on a zone its DSN
			// (or PGTZ) asks for either.
			leftDSN += "?timezone=Asia%2FKolkata"
			var rightDSN string
			var crm *sql.DB
			if pair[1] == "sqlite" {
				rightDSN = filepath.Join(t.TempDir(), "crm.db")
				crm = openDB(t, rightDSN)
			} else {
				rightDSN, crm = serverDB(t, pair[1], map[string]string{"postgres": "Europe/Berlin", "mysql": "Asia/Tokyo"}[pair[1]])
			}
			mustExec(t, erp, serverItemsLeft)
			mustExec(t, crm, serverItemsRight(pair[1]))
			dir := t.TempDir()
			link := linkName()
			p := serveConfig(t, dir, func(api string) string {
				return fmt.Sprintf(serverItemsConfig, pair[0], leftDSN, pair[1], rightDSN, dir, api, link)
			})
			keepDebugLog(t, p, *convergenceDebug+"."+pair[0]+"-"+pair[1])
			randomizedRun(t, p, erp, crm, ops, rng)
		})
	}
}

// TestPostgresInitialSyncResumesAfterKill kills the engine with SIGKILL in
// the middle of a PostgreSQL ↔ PostgreSQL initial sync, restarts it, and
// requires every row exactly once; then a live change arrives and the
// slot's confirmed position covers it.
func TestPostgresInitialSyncResumesAfterKill(t *testing.T) {
	const rows = 30000
	leftDSN, erp := serverDB(t, "postgres", "")
	rightDSN, crm := serverDB(t, "postgres", "")
	mustExec(t, erp, serverItemsLeft)
	mustExec(t, crm, serverItemsRight("postgres"))
	mustExec(t, erp, fmt.Sprintf(`INSERT INTO items (code, name, qty, price, note, kind)
		SELECT 'I-' || lpad(i::text, 6, '0'), 'item ' || i, i, 1.5, NULL, 'A' FROM generate_series(1, %d) AS i`, rows))
	dir := t.TempDir()
	link := linkName()
	p := serveConfig(t, dir, func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", leftDSN, "postgres", rightDSN, dir, api, link)
	})
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "initial sync under way", func() bool {
		v, err := httpGetJSON(p, "/api/v1/maps/items")
		return err == nil && v.InitRowsDone >= 2000
	})
	p.kill()
	partial := countRows(t, crm, "item")
	p.start()
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })
	if n := countRows(t, crm, "item"); n != rows {
		t.Fatalf("after resume: %d rows, want %d (had %d when killed)", n, rows, partial)
	}
	var dups int
	if err := crm.QueryRow(`SELECT count(*) FROM (SELECT itemcode FROM item GROUP BY itemcode HAVING count(*) > 1) d`).Scan(&dups); err != nil || dups != 0 {
		t.Fatalf("duplicates: %d (%v)", dups, err)
	}
	// Live: a change after the restart arrives, and the slot confirms it.
	var lsn string
	if err := erp.QueryRow(`WITH u AS (UPDATE items SET name = 'after kill' WHERE code = 'I-000001' RETURNING 1) SELECT pg_current_wal_lsn()::text FROM u`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "live change reaches the right side", func() bool {
		var name string
		return crm.QueryRow(`SELECT title FROM item WHERE itemcode = 'I-000001'`).Scan(&name) == nil && name == "after kill"
	})
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	waitFor(t, "the slot confirms the applied change", func() bool {
		var ok bool
		err := admin.QueryRow(`SELECT bool_or(confirmed_flush_lsn >= $1::pg_lsn) FROM pg_replication_slots WHERE slot_name LIKE $2`, lsn, "dw_"+link+"_erp_%").Scan(&ok)
		return err == nil && ok
	})
	t.Logf("killed with %d of %d rows copied; resumed to all; slot confirmed past %s", partial, rows, lsn)
}

// linkName is a link name of its own per test, so replication slots (named
// after the link) never collide between tests or with a failed earlier run.
func linkName() string { return fmt.Sprintf("conv%d", rand.Uint32()) }

// TestInitialSyncIntoEmptySideKeepsConcurrentInserts: the right side is
// empty when the run begins, so the initial sync reads no target rows,
// copies with InsertOnly and skips its second pass. An application that
// inserts on the right meanwhile — a new key, and a key the copy has not
// reached yet — must see both kept and brought to the left: the copy
// leaves the existing row alone and the captured inserts replay.
func TestInitialSyncIntoEmptySideKeepsConcurrentInserts(t *testing.T) {
	const rows = 60000
	leftDSN, erp := serverDB(t, "postgres", "")
	rightDSN, crm := serverDB(t, "postgres", "")
	mustExec(t, erp, serverItemsLeft)
	mustExec(t, crm, serverItemsRight("postgres"))
	mustExec(t, erp, fmt.Sprintf(`INSERT INTO items (code, name, qty, price, note, kind)
		SELECT 'I-' || lpad(i::text, 6, '0'), 'item ' || i, i, 1.5, NULL, 'A' FROM generate_series(1, %d) AS i`, rows))
	dir := t.TempDir()
	link := linkName()
	p := serveConfig(t, dir, func(api string) string {
		return fmt.Sprintf(serverItemsConfig, "postgres", leftDSN, "postgres", rightDSN, dir, api, link)
	})
	if code, body := p.post("/api/v1/maps/items/run", map[string]any{}); code != 200 {
		t.Fatalf("run: %d %s", code, body)
	}
	waitFor(t, "initial sync under way", func() bool {
		v, err := httpGetJSON(p, "/api/v1/maps/items")
		return err == nil && v.InitRowsDone >= 1000
	})
	mustExec(t, crm, `INSERT INTO item (itemcode, title, quantity) VALUES ('NEW-1', 'from crm', 7)`)
	last := fmt.Sprintf("I-%06d", rows)
	res, err := crm.Exec(`INSERT INTO item (itemcode, title, quantity) VALUES ($1, 'from crm', 8) ON CONFLICT DO NOTHING`, last)
	if err != nil {
		t.Fatal(err)
	}
	beatTheCopy, _ := res.RowsAffected()
	waitFor(t, "items running", func() bool { return p.status("items") == "Running" })
	waitFor(t, "both sides equal", func() bool {
		l, r := dumpItems(t, erp, crm)
		return diffDumps(l, r) == ""
	})
	if n := countRows(t, erp, "items"); n != rows+1 {
		t.Errorf("left holds %d rows, want %d (the new key brought over)", n, rows+1)
	}
	var title string
	if err := erp.QueryRow(`SELECT name FROM items WHERE code = 'NEW-1'`).Scan(&title); err != nil || title != "from crm" {
		t.Errorf("NEW-1 on the left: %q, %v", title, err)
	}
	if beatTheCopy == 1 {
		// The application's row was there before the copy reached its key:
		// the copy left it, and its later insert wins on both sides.
		if err := erp.QueryRow(`SELECT name FROM items WHERE code = $1`, last).Scan(&title); err != nil || title != "from crm" {
			t.Errorf("%s on the left: %q, %v; want the application's insert", last, title, err)
		}
	} else {
		t.Logf("the copy reached %s before the application's insert; only convergence is checked for it", last)
	}
}

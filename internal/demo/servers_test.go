package demo_test

import (
	"bytes"
	"context"
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

	"github.com/dualwrite/dualwrite/internal/demo"
)

// side creates an empty database on a real server for one side of the
// demo and drops it when the test ends.
func side(t *testing.T, driver string) string {
	t.Helper()
	name := fmt.Sprintf("dw_test_demo_%d", rand.Uint32())
	var admin, dsn string
	switch driver {
	case "postgres":
		admin, dsn = "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/"+name
	case "mysql":
		admin, dsn = "root@tcp(127.0.0.1:3306)/", "root@tcp(127.0.0.1:3306)/"+name
	}
	sqlDriver := map[string]string{"postgres": "pgx", "mysql": "mysql"}[driver]
	db, err := sql.Open(sqlDriver, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database on %s: %v", driver, err)
	}
	t.Cleanup(func() {
		q := "DROP DATABASE IF EXISTS " + name
		if driver == "postgres" {
			q += " WITH (FORCE)"
			// A demo that failed before stopping its maps leaves a slot.
			_, _ = db.Exec(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
		}
		if _, err := db.Exec(q); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	return dsn
}

// TestDemoOnServers runs the whole tour with the ERP and the CRM on real
// servers: PostgreSQL ↔ MariaDB (the flagship pairing), PostgreSQL ↔
// PostgreSQL and PostgreSQL ↔ SQLite. Both sides must end equal under
// every map, and stopping the maps at the end must leave no replication
// slot behind.
func TestDemoOnServers(t *testing.T) {
	cases := []struct{ left, right string }{
		{"postgres", "mysql"},
		{"postgres", "postgres"},
		{"postgres", "sqlite"},
		{"mysql", "sqlite"},
	}
	for _, tc := range cases {
		t.Run(tc.left+"-"+tc.right, func(t *testing.T) {
			dir := t.TempDir()
			o := demo.Options{Dir: dir, Once: true, Listen: "127.0.0.1:0", LeftDriver: tc.left, RightDriver: tc.right}
			o.LeftDSN = dsnFor(t, tc.left, filepath.Join(dir, "erp.db"))
			o.RightDSN = dsnFor(t, tc.right, filepath.Join(dir, "crm.db"))
			var out bytes.Buffer
			o.Out = &out
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := demo.Run(ctx, o); err != nil {
				t.Fatalf("demo on %s ↔ %s: %v\n%s", tc.left, tc.right, err, out.String())
			}
			if tc.left == "postgres" || tc.right == "postgres" {
				db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				// Only this run's databases: other tests on the shared
				// server may hold demo slots of their own meanwhile.
				var dbs []string
				for _, dsn := range []string{o.LeftDSN, o.RightDSN} {
					if u, err := url.Parse(dsn); err == nil && u.Scheme == "postgres" {
						dbs = append(dbs, strings.TrimPrefix(u.Path, "/"))
					}
				}
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'dw_demo_%' AND database = ANY($1)`, dbs).Scan(&n); err != nil || n != 0 {
					t.Fatalf("replication slots left behind after the maps stopped: %d (%v)", n, err)
				}
			}
		})
	}
}

func dsnFor(t *testing.T, driver, sqlitePath string) string {
	if driver == "sqlite" {
		return sqlitePath
	}
	return side(t, driver)
}

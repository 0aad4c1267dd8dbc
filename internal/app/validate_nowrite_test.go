package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/app"
)

// pgObjects lists what a database holds that validate could create:
// schemas, tables, publications, and the server's replication slots and
// origins.
func pgObjects(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return queryStrings(t, db, `
SELECT 'table ' || table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
UNION ALL SELECT 'publication ' || pubname FROM pg_publication
UNION ALL SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE database = current_database()
UNION ALL SELECT 'origin ' || roname FROM pg_replication_origin`)
}

func mysqlObjects(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return queryStrings(t, db, `SELECT CONCAT('table ', table_name, ' rows ', COALESCE(table_rows, 0)) FROM information_schema.tables WHERE table_schema = DATABASE()`)
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func filesUnder(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestValidateWritesNothing runs validate against PostgreSQL and MariaDB,
// and against SQLite files (one of them a mistyped path): no table,
// schema, publication, slot or origin appears in the databases, no file
// appears or changes, and data_dir is not created.
func TestValidateWritesNothing(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	leftDSN, erp := serverDB(t, "postgres", "")
	rightDSN, crm := serverDB(t, "mysql", "")
	mustExec(t, erp, serverItemsLeft)
	mustExec(t, crm, serverItemsRight("mysql"))
	dir := t.TempDir()
	sqliteDB := filepath.Join(dir, "crm.db")
	lite := openDB(t, sqliteDB)
	mustExec(t, lite, itemsRight)
	lite.Close()
	os.Remove(sqliteDB + "-wal")
	os.Remove(sqliteDB + "-shm")

	pgBefore, myBefore, filesBefore := pgObjects(t, erp), mysqlObjects(t, crm), filesUnder(t, dir)
	for _, tc := range []struct {
		name, right, rightDSN string
		wantProblems          bool
	}{
		{"postgres-mysql", "mysql", rightDSN, false},
		{"postgres-sqlite", "sqlite", sqliteDB, false},
		{"postgres-mistyped-sqlite", "sqlite", filepath.Join(dir, "crm-typo.db"), true},
	} {
		cfg := filepath.Join(t.TempDir(), "dualwrite.yaml")
		text := fmt.Sprintf(serverItemsConfig, "postgres", leftDSN, tc.right, tc.rightDSN, dir, "127.0.0.1:7070", linkName())
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		n, err := app.Validate(ctx, cfg, &out, false, quiet)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (n > 0) != tc.wantProblems {
			t.Fatalf("%s: %d problems:\n%s", tc.name, n, out.String())
		}
		if tc.wantProblems && !strings.Contains(out.String(), "does not exist") {
			t.Errorf("%s: the report does not say the file is missing:\n%s", tc.name, out.String())
		}
		os.Remove(cfg)
	}
	if got := pgObjects(t, erp); !slices.Equal(got, pgBefore) {
		t.Errorf("validate changed PostgreSQL:\nbefore %v\nafter  %v", pgBefore, got)
	}
	if got := mysqlObjects(t, crm); !slices.Equal(got, myBefore) {
		t.Errorf("validate changed MariaDB:\nbefore %v\nafter  %v", myBefore, got)
	}
	filesAfter := filesUnder(t, dir)
	for p, h := range filesAfter {
		if b, ok := filesBefore[p]; !ok {
			t.Errorf("validate created %s", p)
		} else if b != h {
			t.Errorf("validate changed %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("validate created data_dir (%v)", err)
	}
}

// TestValidateListenOnOtherMachines: validate reports a non-loopback
// listen without TLS as DW2310 (serve refuses it), and warns, without
// counting a problem, when engine.insecure_listen allows it.
func TestValidateListenOnOtherMachines(t *testing.T) {
	dir := t.TempDir()
	erp := openDB(t, filepath.Join(dir, "erp.db"))
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	mustExec(t, erp, itemsLeft)
	mustExec(t, crm, itemsRight)
	cfg := filepath.Join(dir, "dualwrite.yaml")
	for _, tc := range []struct {
		extra    string
		problems int
		want     string
	}{
		{"", 1, "DW2310 engine.listen"},
		{"  insecure_listen: true\n", 0, "warning: engine.listen 0.0.0.0:7070 is reachable from other machines without TLS"},
	} {
		text := strings.Replace(fmt.Sprintf(itemsConfig, dir, "0.0.0.0:7070"), "engine:\n", "engine:\n"+tc.extra, 1)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		n, err := app.Validate(context.Background(), cfg, &out, false, slog.New(slog.DiscardHandler))
		if err != nil || n != tc.problems || !strings.Contains(out.String(), tc.want) {
			t.Errorf("insecure_listen %q: %d problems, %v:\n%s\nwant %d and %q", tc.extra, n, err, out.String(), tc.problems, tc.want)
		}
	}
}

package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// adminDSN reaches the test server (PostgreSQL 15 on loopback, trust auth).
func adminDSN(db string) string {
	host := os.Getenv("DW_PG_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", host, db)
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// admin returns a superuser *sql.DB on the postgres database.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", adminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testEnv is one test's database with its own slot, publication and
// origin names, all removed when the test ends.
type testEnv struct {
	name string // database name, also the slot/publication/origin name
	dsn  string
	app  *sql.DB
}

func newEnv(t testing.TB) testEnv {
	t.Helper()
	name := "dw_test_" + randomSuffix(t)
	adm := admin(t)
	ctx := context.Background()
	if _, err := adm.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	env := testEnv{name: name, dsn: adminDSN(name)}
	app, err := sql.Open("pgx", env.dsn)
	if err != nil {
		t.Fatal(err)
	}
	env.app = app
	t.Cleanup(func() {
		app.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Never leave a slot behind: it would pin WAL for every other test.
		for i := 0; i < 50; i++ {
			_, err := adm.ExecContext(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", name)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := adm.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		_, _ = adm.ExecContext(ctx, "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1 OR roname LIKE $2", name, name+".%")
	})
	return env
}

func (e testEnv) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := e.app.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// open opens a connector on the env with test-specific names.
func (e testEnv) open(t testing.TB, mut ...func(*Options)) *Connector {
	t.Helper()
	return e.openDSN(t, e.dsn, mut...)
}

func (e testEnv) openDSN(t testing.TB, dsn string, mut ...func(*Options)) *Connector {
	t.Helper()
	o := Options{Slot: e.name, Publication: e.name, Origin: e.name, Logger: testLogger(t)}
	for _, m := range mut {
		m(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, dsn, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

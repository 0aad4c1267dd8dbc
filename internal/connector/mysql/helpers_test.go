package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/servertest"
)

// serverDSN is the root DSN of the test server, without a database.
func serverDSN() string {
	if d := os.Getenv("DW_MYSQL_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// testDB creates a fresh database dw_test_<random>, dropped when t ends,
// and returns its name and the DSN for it.
func testDB(t *testing.T) (name, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := sql.Open("mysql", serverDSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := root.PingContext(ctx); err != nil {
		root.Close()
		servertest.Missing(t, "no MariaDB/MySQL server at %s: %v", serverDSN(), err)
	}
	name = fmt.Sprintf("dw_test_%016x", rand.Uint64())
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		root.Close()
		t.Fatalf("create test database %s on %s: %v", name, serverDSN(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := root.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
		root.Close()
	})
	return name, serverDSN() + name
}

// openTest opens a connector and an "application" pool on a fresh database.
func openTest(t *testing.T) (*Connector, *sql.DB, string) {
	t.Helper()
	name, dsn := testDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, dsn, Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	app, err := sql.Open("mysql", dsn+"?parseTime=true&loc=UTC")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		app.Close()
		c.Close()
	})
	return c, app, name
}

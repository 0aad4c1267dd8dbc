package sqlite

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/connectortest"
)

// harness runs the conformance suite on a database file in t.TempDir().
type harness struct{}

func (harness) Open(t *testing.T) (connector.Connector, *sql.DB) {
	c, db, _ := openTemp(t)
	return c, db
}

func (harness) Type(k connector.Kind) string {
	switch k {
	case connector.KindInt:
		return "INTEGER"
	case connector.KindFloat:
		return "REAL"
	case connector.KindDecimal:
		// TEXT affinity keeps every digit (see the package doc).
		return "DECIMAL_TEXT(30,4)"
	case connector.KindBool:
		return "BOOLEAN"
	case connector.KindBytes:
		return "BLOB"
	case connector.KindTime:
		return "DATETIME"
	case connector.KindDate:
		return "DATE"
	case connector.KindJSON:
		return "JSON"
	case connector.KindUUID:
		return "UUID"
	}
	return "TEXT"
}

func (harness) Placeholder(int) string { return "?" }

func (harness) Quote(name string) string { return quote(name) }

// openTemp opens a connector and an application handle on a new database
// file, both closed when t ends.
func openTemp(t *testing.T) (*Connector, *sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, path, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open application handle: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return c, db, path
}

func (harness) UUIDDefault() string { return "(lower(hex(randomblob(16))))" }

func TestConformance(t *testing.T) {
	connectortest.Run(t, harness{})
}

// Package connectortest is the conformance suite every connector passes.
// A driver's test file implements Harness and calls Run:
//
//	func TestConformance(t *testing.T) { connectortest.Run(t, harness{}) }
//
// The suite acts as "the application" through the *sql.DB the harness
// returns, and as the engine through the connector. It only uses portable
// SQL: CREATE TABLE / CREATE UNIQUE INDEX built from Harness.Type and
// Harness.Quote, INSERT/UPDATE/DELETE with Harness.Placeholder binds whose
// arguments are int64, string or nil, and BEGIN/COMMIT through
// database/sql transactions. Table and column names are lower case.
//
// Capture may be asynchronous (a replication stream): the suite waits for
// changes with generous deadlines and never assumes that one application
// transaction is one change.Tx, only that a transaction is never split and
// that transactions come in commit order.
//
// Semantics the suite pins down beyond the interface comments:
//   - An Upsert of an existing row with only some columns in Values must
//     succeed even when the table has other NOT NULL columns without
//     default (so INSERT ... ON CONFLICT alone is not enough: PostgreSQL,
//     SQLite and MariaDB all check NOT NULL on the proposed row first).
//   - Capture is started with every watched table in FullOld, and must then
//     report OldComplete with the full old row on update and delete.
//   - Capture from a zero position does not report changes committed
//     before Capture returned.
//   - Write.Return and Ref values work in every Apply path (single
//     writes, bulk runs, isolated or not): a row whose surrogate the
//     database generates (Harness.UUIDDefault) is referenced by later
//     writes of the same batch, and Result.Returned reports the rows.
package connectortest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector"
)

// Harness adapts the suite to one database.
type Harness interface {
	// Open returns a connector on a fresh, empty database (or schema) that
	// is dropped when t ends, and a *sql.DB to the same database for the
	// test to act as "the application". Unqualified table names used on
	// the *sql.DB and passed to the connector must resolve to that
	// database (or schema). Open registers its own cleanup with t.
	Open(t *testing.T) (connector.Connector, *sql.DB)
	// Type returns the SQL column type to use for a kind in CREATE TABLE.
	// Requirements: KindInt holds every int64 (BIGINT); KindDecimal keeps
	// 30 digits with scale 4 exactly (NUMERIC(30,4)); KindText holds 100KB
	// of 4-byte UTF-8 (utf8mb4 LONGTEXT on MariaDB); KindBytes holds 16KB;
	// KindTime keeps microseconds (TIMESTAMP(6), DATETIME(6)). Key and
	// unique-index columns in the suite are always KindInt.
	//
	// The connector's session must reject NOT NULL violations and inserts
	// that omit a NOT NULL column without default (MariaDB: strict mode),
	// because the suite checks that such writes fail.
	Type(k connector.Kind) string
	// Placeholder returns the i-th (1-based) bind placeholder: "?" or "$1".
	Placeholder(i int) string
	// Quote quotes an identifier.
	Quote(name string) string
	// UUIDDefault returns the DEFAULT expression of a Type(KindUUID)
	// column whose value the database generates on insert, the way a
	// target generates a surrogate: gen_random_uuid() on PostgreSQL.
	UUIDDefault() string
}

// Run runs every conformance test, each as a sub-test on a fresh database.
func Run(t *testing.T, h Harness) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Describe", testDescribe},
		{"Scan", testScan},
		{"ApplyUpsert", testApplyUpsert},
		{"ApplyUniqueKey", testApplyUniqueKey},
		{"ApplyUpdateOnlyDelete", testApplyUpdateOnlyDelete},
		{"ApplyIdempotent", testApplyIdempotent},
		{"ApplyIsolate", testApplyIsolate},
		{"ApplyFailureRollsBack", testApplyFailureRollsBack},
		{"ApplyTooLarge", testApplyTooLarge},
		{"ApplyConditional", testApplyConditional},
		{"ApplyBulk", testApplyBulk},
		{"ApplyBulkInsert", testApplyBulkInsert},
		{"ApplyRefGenerated", testApplyRefGenerated},
		{"ApplyRefInKey", testApplyRefInKey},
		{"ApplyRepeatedUpdates", testApplyRepeatedUpdates},
		{"ApplyRefCycles", testApplyRefCycles},
		{"ApplyRefIsolateFailure", testApplyRefIsolateFailure},
		{"ApplyRefReturned", testApplyRefReturned},
		{"ApplyRefMalformed", testApplyRefMalformed},
		{"ApplyRefFullBatch", testApplyRefFullBatch},
		{"ReadKeys", testReadKeys},
		{"Values", testValues},
		{"CaptureOrder", testCaptureOrder},
		{"CaptureValues", testCaptureValues},
		{"CaptureEcho", testCaptureEcho},
		{"CaptureResume", testCaptureResume},
		{"CaptureNextHonoursContext", testCaptureContext},
		{"SourceIdentity", testSourceIdentity},
		{"Owner", testOwner},
		{"CaptureTruncate", testCaptureTruncate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, h)
		})
	}
}

// column is a column of a table the suite creates.
type column struct {
	name    string
	kind    connector.Kind
	notNull bool
	dflt    string // SQL literal, "" for none
}

// schema builds portable DDL and DML for one harness.
type schema struct {
	t  *testing.T
	h  Harness
	db *sql.DB
}

func (s schema) q(name string) string { return s.h.Quote(name) }

func (s schema) qlist(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.q(n)
	}
	return strings.Join(out, ", ")
}

// create creates table name with cols and primary key pk, plus one unique
// index per entry of unique.
func (s schema) create(name string, cols []column, pk []string, unique ...[]string) {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (", s.q(name))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", s.q(c.name), s.h.Type(c.kind))
		if c.notNull {
			b.WriteString(" NOT NULL")
		}
		if c.dflt != "" {
			b.WriteString(" DEFAULT " + c.dflt)
		}
	}
	fmt.Fprintf(&b, ", PRIMARY KEY (%s))", s.qlist(pk))
	s.exec(b.String())
	for i, u := range unique {
		s.exec(fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)", s.q(fmt.Sprintf("%s_u%d", name, i+1)), s.q(name), s.qlist(u)))
	}
}

func (s schema) exec(query string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, query, args...); err != nil {
		s.t.Fatalf("application: %s: %v", query, err)
	}
}

// insert inserts one row as the application; vals are int64, string or nil.
func (s schema) insert(table string, cols []string, vals ...any) {
	s.t.Helper()
	s.exec(s.insertSQL(table, cols), vals...)
}

func (s schema) insertSQL(table string, cols []string) string {
	ph := make([]string, len(cols))
	for i := range cols {
		ph[i] = s.h.Placeholder(i + 1)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", s.q(table), s.qlist(cols), strings.Join(ph, ", "))
}

// tx runs statements in one application transaction.
func (s schema) tx(fn func(exec func(query string, args ...any))) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.t.Fatalf("application: begin: %v", err)
	}
	failed := false
	fn(func(query string, args ...any) {
		if failed {
			return
		}
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			failed = true
			_ = tx.Rollback()
			s.t.Fatalf("application: %s: %v", query, err)
		}
	})
	if err := tx.Commit(); err != nil {
		s.t.Fatalf("application: commit: %v", err)
	}
}

func open(t *testing.T, h Harness) (connector.Connector, schema) {
	t.Helper()
	c, db := h.Open(t)
	return c, schema{t: t, h: h, db: db}
}

// ctxFor returns a context bounded by a generous deadline, cancelled when t ends.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

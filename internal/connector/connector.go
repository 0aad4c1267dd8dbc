// Package connector is the seam between the engine and the databases. A
// connector serves one side of a link: it describes tables, scans them for
// the initial sync, looks rows up for lookups, applies the engine's writes
// and captures committed changes. Drivers live in sub-packages (sqlite,
// postgres, mysql) and all pass the conformance suite in connectortest.
//
// Connectors never import the engine: the dependency points one way.
package connector

import (
	"context"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// Connector is the set of capabilities every driver provides.
type Connector interface {
	Describer
	Scanner
	Applier
	CaptureOpener
	// Close releases the connector's connections. It does not drop capture
	// state (slots, triggers); see Releaser.
	Close() error
}

// Kind is a normalised column type, used to check that mapped columns can
// carry each other's values.
type Kind string

const (
	KindInt     Kind = "int"
	KindFloat   Kind = "float"
	KindDecimal Kind = "decimal"
	KindText    Kind = "text"
	KindBool    Kind = "bool"
	KindBytes   Kind = "bytes"
	KindTime    Kind = "time" // timestamp, datetime
	KindDate    Kind = "date"
	KindJSON    Kind = "json"
	KindUUID    Kind = "uuid"
	KindOther   Kind = "other" // arrays and anything else, carried opaquely as text
)

// Column describes one table column.
type Column struct {
	Name string
	// Type is the database's own type name, for messages.
	Type     string
	Kind     Kind
	Nullable bool
	// HasDefault is true when an INSERT may omit the column (a default, an
	// identity or an auto-increment).
	HasDefault bool
}

// Table describes a table on one side.
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
	// Unique lists the column sets of every unique index or constraint,
	// the primary key included.
	Unique [][]string
}

// Column returns the named column (case-sensitive) and whether it exists.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// HasUnique reports whether some unique index covers exactly cols (in any order).
func (t Table) HasUnique(cols []string) bool {
	for _, u := range t.Unique {
		if len(u) != len(cols) {
			continue
		}
		found := 0
		for _, c := range cols {
			for _, x := range u {
				if x == c {
					found++
					break
				}
			}
		}
		if found == len(cols) {
			return true
		}
	}
	return false
}

// Describer reads table metadata.
type Describer interface {
	// Describe returns the table's columns and unique indexes. It returns
	// an error wrapping ErrNoTable when the table does not exist.
	Describe(ctx context.Context, table string) (Table, error)
}

// ScanRequest asks for a chunk of a table in key order.
type ScanRequest struct {
	Table string
	// Columns to return; nil means every column.
	Columns []string
	// OrderBy is the key the scan pages through; it must be unique.
	OrderBy []string
	// After is the OrderBy values of the last row of the previous chunk;
	// nil starts at the beginning.
	After []any
	// Equal restricts the scan to rows whose columns equal these values
	// (a company partition, a lookup).
	Equal change.Row
	// Limit caps the number of rows; 0 means no cap.
	Limit int
}

// Scanner reads rows.
type Scanner interface {
	// Scan returns rows ordered by req.OrderBy ascending, strictly after
	// req.After. NULLs in OrderBy columns sort first.
	Scan(ctx context.Context, req ScanRequest) ([]change.Row, error)
	// Count returns the number of rows matching equal (nil: all rows), for
	// progress reporting.
	Count(ctx context.Context, table string, equal change.Row) (int64, error)
}

// WriteOp is what a Write does.
type WriteOp uint8

const (
	// Upsert inserts the row, or when a row with the same Key exists,
	// updates only the columns in Values. Columns absent from Values keep
	// their value (or get their default on insert).
	Upsert WriteOp = iota + 1
	// UpdateOnly updates the columns in Values of the row with Key, if it
	// exists; it never inserts.
	UpdateOnly
	// Delete deletes the row with Key, if it exists.
	Delete
	// InsertOnly inserts the row when no row has Key; when one does, the
	// write is not applied and is reported in Result.Unmatched.
	InsertOnly
)

// Write is one row write on the target side, already mapped: table and
// column names are the target's.
type Write struct {
	Table string
	// Key is the integration key: column → value. A unique index covers it.
	Key    change.Row
	Op     WriteOp
	Values change.Row
	// Expect makes the write conditional (compare-and-set): when the row
	// with Key exists, the write applies only if the row's current values
	// of these columns equal Expect (compared with Batch.Equal); otherwise
	// nothing is written and the write is reported in Result.Unmatched.
	// A missing row is inserted by Upsert and ignored by UpdateOnly and
	// Delete, whatever Expect says. Empty Expect: unconditional.
	Expect change.Row
	// Ref is an opaque reference the engine uses to match errors to
	// source rows.
	Ref int
	// Return lists columns to read back from the row after the write,
	// inside the transaction (a surrogate the target generates). They are
	// reported in Result.Returned, and Ref values of later writes use them.
	//
	// The row is read as it is after the write: after an Upsert, an
	// UpdateOnly of an existing row or an InsertOnly, also an InsertOnly
	// left unapplied because its key exists (the existing row's values).
	// A Delete, a failed write, a write left unmatched by Expect and an
	// UpdateOnly of a missing row leave no row to read.
	Return []string
}

// Ref is a Write value resolved inside the target transaction: the value
// of Column in the row that the batch's earlier write number Write (index
// in Batch.Writes) left in the table. It lets one transaction insert a
// referenced row whose surrogate the target generates and then a row
// that references it.
//
// A Ref may stand in Values of an Upsert, UpdateOnly or InsertOnly write,
// and in Key (an order line keyed by the id its order gets in the same
// transaction), never in Expect (see NewResolver for how that is
// rejected). It
// must name an earlier write (Write below the referencing write's index)
// that lists Column in its Return; otherwise Apply returns an error
// wrapping ErrBadRef before writing anything. When
// the referenced write failed, was unmatched or left no row, the
// referencing write fails with an error wrapping ErrRefUnresolved (a
// WriteError in an isolated batch). Reference cycles are written as an
// insert with the reference unset, then an UpdateOnly that sets it to a
// Ref, in the same batch.
type Ref struct {
	Write  int
	Column string
}

// Batch is the unit of one target transaction.
type Batch struct {
	// Stream names the source of the writes (map and direction). The
	// connector keeps one applied position per stream.
	Stream string
	// Position is recorded for Stream in the same transaction as the
	// writes. A zero Position records nothing (initial sync writes).
	Position change.Position
	Writes   []Write
	// Isolate makes each write succeed or fail on its own (a savepoint
	// each): failed writes are reported in Result.Failed and the rest
	// commits. Without Isolate the first failure rolls back the batch.
	Isolate bool
	// Equal compares a row's current value (as Scan returns it) with an
	// expected one, for Write.Expect. Nil means reflect.DeepEqual.
	Equal func(have, want any) bool
}

// MaxBatchRows is the largest number of writes in one target transaction.
const MaxBatchRows = 1000

// WriteError reports one failed write of an isolated batch.
type WriteError struct {
	Ref int
	Err error
}

// Result reports the outcome of Apply.
type Result struct {
	// Skipped is true when Position was not after the stream's applied
	// position, so the batch was already applied and nothing was written.
	Skipped bool
	Failed  []WriteError
	// Unmatched lists the Refs of conditional writes (Expect, InsertOnly)
	// that were not applied because the row did not match.
	Unmatched []int
	// Returned holds, by index in Batch.Writes, the Return columns of each
	// write that left a row (not failed, not unmatched, not a Delete). An
	// InsertOnly left unmatched because its key exists reports the
	// existing row. A Skipped batch returns nothing; a batch without any
	// Return leaves it nil.
	Returned map[int]change.Row
}

// Applier writes batches.
type Applier interface {
	// Apply writes the batch in one transaction together with its
	// position. The writes are tagged as the engine's own so that no
	// capturer on this side reports them. Apply is idempotent: a batch
	// whose position is not after the stream's recorded position is
	// skipped.
	Apply(ctx context.Context, b Batch) (Result, error)
	// AppliedPosition returns the last position recorded for stream (zero
	// if none).
	AppliedPosition(ctx context.Context, stream string) (change.Position, error)
}

// CaptureOptions says what to capture.
type CaptureOptions struct {
	// Tables to watch. Changes to other tables are not reported.
	Tables []string
	// From is the last position already handled: capture resumes after it.
	// A zero From resumes after the last position acknowledged to the
	// source (a slot's confirmed position, the trimmed end of a change
	// table); a source that keeps no such state starts at its current end
	// of log and reports that start through Positioner.
	From change.Position
	// Tables that need the complete old row image on update and delete.
	FullOld []string
}

// CaptureOpener starts capture.
type CaptureOpener interface {
	// Capture prepares what capture needs on the tables (triggers,
	// publication, slot) and returns a capturer positioned after
	// opts.From.
	Capture(ctx context.Context, opts CaptureOptions) (Capturer, error)
}

// Capturer reports committed source transactions, pull-style.
type Capturer interface {
	// Next blocks until the next committed transaction that changed a
	// watched table and was not written by the engine, or until ctx ends.
	// Transactions come in commit order.
	Next(ctx context.Context) (change.Tx, error)
	// Ack tells the source that every transaction up to and including pos
	// is durable downstream, so its log may be released.
	Ack(ctx context.Context, pos change.Position) error
	// Close stops capture; it does not release the log (see Releaser).
	Close() error
}

// Optional capabilities, found by type assertion.

// KeyReader is implemented by connectors that read many rows by key in
// one round trip (the initial sync reads the target rows of a whole chunk
// at once).
type KeyReader interface {
	// ReadKeys returns the rows of table whose key columns equal one of
	// keys, in any order. Every key has the same columns and no NULL value.
	ReadKeys(ctx context.Context, table string, keys []change.Row) ([]change.Row, error)
}

// SnapshotOpener is implemented by connectors whose capture can begin at
// a consistent snapshot of the data: a PostgreSQL slot created with an
// exported snapshot. Reading the initial sync inside it, no change falls
// between what the scan sees and what capture streams, and none is in both.
type SnapshotOpener interface {
	// OpenSnapshot returns a reader of the data as of the start of the
	// capture just opened, or nil when there is none (capture resumed an
	// existing slot, or the snapshot was already taken or expired). A
	// snapshot is given out once.
	OpenSnapshot(ctx context.Context) (SnapshotReader, error)
}

// SnapshotReader scans inside a snapshot.
type SnapshotReader interface {
	// Scan is Scanner.Scan as of the snapshot.
	Scan(ctx context.Context, req ScanRequest) ([]change.Row, error)
	// Close ends the snapshot's transaction.
	Close() error
}

// Positioner is implemented by capturers that can say where they start,
// so the engine can persist it before anything is delivered (for sources
// that do not keep a consumer's position themselves).
type Positioner interface {
	Position() change.Position
}

// StallReporter is implemented by capturers that reconnect on their own
// in the background: Stalled returns why the stream cannot progress right
// now (the server cannot be reached, a reconnect fails), or nil while it
// streams. The error carries a problem code where the driver knows one.
type StallReporter interface {
	Stalled() error
}

// SchemaWatcher is implemented by capturers that see table definitions
// change in the log (PostgreSQL relation messages, MariaDB/MySQL DDL
// events). SchemaChanges returns the watched tables (configured names)
// whose definition may have changed since the previous call.
type SchemaWatcher interface {
	SchemaChanges() []string
}

// EchoCounter is implemented by capturers that count the engine's own
// writes they dropped.
type EchoCounter interface {
	EchoesSuppressed() int64
}

// Releaser is implemented by connectors that hold log resources (a
// replication slot, change tables) that must be released when no map
// uses the side any more.
type Releaser interface {
	Release(ctx context.Context) error
}

// Problem is a readiness problem found by a Checker.
type Problem struct {
	Code    string // stable DWxxxx code
	Message string // what is wrong and what to do
}

// Checker is implemented by connectors that can check server settings and
// privileges before any map starts.
type Checker interface {
	Check(ctx context.Context, tables []string) []Problem
}

// Lag is the capture lag of a side.
type Lag struct {
	Bytes       int64
	Seconds     float64
	RetainedLog int64 // bytes of log the source keeps for us
}

// LagReporter is implemented by connectors that can report capture lag.
type LagReporter interface {
	Lag(ctx context.Context) (Lag, error)
}

// Clock abstracts time for connectors that timestamp changes themselves.
type Clock func() time.Time

func (o WriteOp) String() string {
	switch o {
	case Upsert:
		return "upsert"
	case UpdateOnly:
		return "update"
	case Delete:
		return "delete"
	case InsertOnly:
		return "insert"
	}
	return "op?"
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.Connector   = (*Connector)(nil)
	_ connector.Releaser    = (*Connector)(nil)
	_ connector.Checker     = (*Connector)(nil)
	_ connector.Capturer    = (*Capturer)(nil)
	_ connector.EchoCounter = (*Capturer)(nil)
)

// DefaultPollInterval is how often a capturer polls the change table when
// Options.PollInterval is zero.
const DefaultPollInterval = 50 * time.Millisecond

// busyTimeout is how long a connection waits for another writer (the
// application) before SQLite reports the database as locked.
const busyTimeout = 10 * time.Second

// Options configures a Connector. Zero values take the documented defaults.
type Options struct {
	// Logger receives the connector's logs. Default: slog.Default().
	Logger *slog.Logger
	// PollInterval is how often capture polls the change table. Default 50ms.
	PollInterval time.Duration
	// Now is the clock, used when a change row carries no readable time.
	// Default time.Now.
	Now func() time.Time
}

// Connector is a connection to one SQLite database file.
type Connector struct {
	dsn  string
	opts Options
	log  *slog.Logger
	// writer has exactly one connection: SQLite has one writer, and every
	// engine write goes through it (BEGIN IMMEDIATE).
	writer *sql.DB
	reader *sql.DB

	mu      sync.Mutex
	schema  int64 // PRAGMA schema_version the cache below belongs to
	tables  map[string]tableInfo
	closeMu sync.Once

	// source is the identity of the source whose positions the progress
	// table records (ownership.go); "" checks nothing.
	source atomic.Pointer[string]
}

// tableInfo is a described table plus what value conversion needs.
type tableInfo struct {
	connector.Table
	cols map[string]colInfo
}

type colInfo struct {
	kind  connector.Kind
	scale int // declared decimal scale, -1 when not declared
}

// Open opens (and, following SQLite semantics, creates) the database at
// dsn, a file path or a "file:" URI, and prepares the connector's own
// tables (_dw_progress, _dw_marker).
func Open(ctx context.Context, dsn string, opts Options) (*Connector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Connector{dsn: dsn, opts: opts, log: opts.Logger, tables: map[string]tableInfo{}, schema: -1}
	var err error
	if c.writer, err = sql.Open("sqlite", withParams(dsn, "immediate")); err != nil {
		return nil, openError(dsn, err)
	}
	c.writer.SetMaxOpenConns(1)
	c.writer.SetConnMaxIdleTime(0)
	if c.reader, err = sql.Open("sqlite", withParams(dsn, "deferred")); err != nil {
		_ = c.writer.Close()
		return nil, openError(dsn, err)
	}
	c.reader.SetMaxOpenConns(4)
	if err := c.init(ctx); err != nil {
		_ = c.Close()
		return nil, openError(dsn, err)
	}
	return c, nil
}

func openError(dsn string, err error) error {
	return problem.Wrap(problem.ConnectionFailed, err,
		"cannot open SQLite database %q; check that the path exists and is writable, and that no other program holds an exclusive lock", dsn)
}

// withParams adds the connection settings to a path or file: URI.
func withParams(dsn, txlock string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "_pragma=busy_timeout(" + strconv.Itoa(int(busyTimeout/time.Millisecond)) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=" + txlock
}

func (c *Connector) init(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS _dw_progress (stream TEXT PRIMARY KEY, lsn INTEGER NOT NULL, sub INTEGER NOT NULL, token TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS _dw_marker (id INTEGER PRIMARY KEY CHECK (id = 1), active INTEGER NOT NULL)`,
		`INSERT OR IGNORE INTO _dw_marker (id, active) VALUES (1, 0)`,
	}
	for _, s := range stmts {
		if _, err := c.writer.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("prepare connector tables: %w", err)
		}
	}
	if err := c.initOwnership(ctx); err != nil {
		return err
	}
	var mode string
	if err := c.writer.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") && !strings.EqualFold(mode, "memory") {
		c.log.Warn("sqlite database is not in WAL mode; the application and the engine will block each other more", "journal_mode", mode)
	}
	return nil
}

// Close closes the connections. Capture triggers stay in place (see Release).
func (c *Connector) Close() error {
	var err error
	c.closeMu.Do(func() {
		err = errors.Join(c.writer.Close(), c.reader.Close())
	})
	return err
}

// Check reports the watched tables that do not exist.
func (c *Connector) Check(ctx context.Context, tables []string) []connector.Problem {
	var out []connector.Problem
	for _, t := range tables {
		if _, err := c.Describe(ctx, t); err != nil {
			code := problem.ConnectionFailed
			msg := fmt.Sprintf("cannot read table %s: %v; check the database path", t, err)
			if errors.Is(err, connector.ErrNoTable) {
				code = problem.UnknownTable
				msg = fmt.Sprintf("table %s does not exist in the SQLite database; create it or fix the map", t)
			}
			out = append(out, connector.Problem{Code: string(code), Message: msg})
		}
	}
	return out
}

// quote quotes an identifier.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// literal quotes a string literal.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func internal(table string) bool {
	return strings.HasPrefix(strings.ToLower(table), "_dw_")
}

// Describe returns the table's columns, primary key and unique indexes.
func (c *Connector) Describe(ctx context.Context, table string) (connector.Table, error) {
	ti, err := c.table(ctx, table)
	if err != nil {
		return connector.Table{}, err
	}
	return ti.Table, nil
}

// table returns the cached description of table, refreshing the cache when
// the database schema changed.
func (c *Connector) table(ctx context.Context, table string) (tableInfo, error) {
	var version int64
	if err := c.reader.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return tableInfo{}, fmt.Errorf("describe %s: read schema version: %w", table, err)
	}
	c.mu.Lock()
	if version != c.schema {
		c.schema = version
		c.tables = map[string]tableInfo{}
	}
	ti, ok := c.tables[table]
	c.mu.Unlock()
	if ok {
		return ti, nil
	}
	ti, err := c.describe(ctx, table)
	if err != nil {
		return tableInfo{}, err
	}
	c.mu.Lock()
	if version == c.schema {
		c.tables[table] = ti
	}
	c.mu.Unlock()
	return ti, nil
}

func (c *Connector) describe(ctx context.Context, table string) (tableInfo, error) {
	if internal(table) {
		return tableInfo{}, fmt.Errorf("describe %s: %w (tables named _dw_* belong to dualwrite)", table, connector.ErrNoTable)
	}
	var withoutRowid bool
	err := c.reader.QueryRowContext(ctx, `SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ? AND type = 'table'`, table).Scan(&withoutRowid)
	if errors.Is(err, sql.ErrNoRows) {
		return tableInfo{}, fmt.Errorf("describe %s: %w", table, connector.ErrNoTable)
	}
	if err != nil {
		return tableInfo{}, fmt.Errorf("describe %s: %w", table, err)
	}
	ti := tableInfo{Table: connector.Table{Name: table}, cols: map[string]colInfo{}}
	rows, err := c.reader.QueryContext(ctx, `SELECT name, type, "notnull", dflt_value IS NOT NULL, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return tableInfo{}, fmt.Errorf("describe %s: columns: %w", table, err)
	}
	type pkCol struct {
		name string
		pos  int
	}
	var pks []pkCol
	var pkType string
	for rows.Next() {
		var col connector.Column
		var notNull, hasDefault bool
		var pk int
		if err := rows.Scan(&col.Name, &col.Type, &notNull, &hasDefault, &pk); err != nil {
			rows.Close()
			return tableInfo{}, fmt.Errorf("describe %s: columns: %w", table, err)
		}
		col.Kind, _ = kindOf(col.Type)
		col.Nullable = !notNull
		col.HasDefault = hasDefault
		if pk > 0 {
			pks = append(pks, pkCol{col.Name, pk})
			pkType = col.Type
		}
		ti.Columns = append(ti.Columns, col)
		_, scale := kindOf(col.Type)
		ti.cols[col.Name] = colInfo{kind: col.Kind, scale: scale}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return tableInfo{}, fmt.Errorf("describe %s: columns: %w", table, err)
	}
	for i := 0; i < len(pks); i++ { // order by position in the key
		for j := i + 1; j < len(pks); j++ {
			if pks[j].pos < pks[i].pos {
				pks[i], pks[j] = pks[j], pks[i]
			}
		}
	}
	for _, p := range pks {
		ti.PrimaryKey = append(ti.PrimaryKey, p.name)
	}
	// An INTEGER PRIMARY KEY is an alias of the rowid: SQLite assigns it
	// when an insert omits it, and it is never NULL.
	if len(pks) == 1 && !withoutRowid && strings.EqualFold(strings.TrimSpace(pkType), "INTEGER") {
		for i := range ti.Columns {
			if ti.Columns[i].Name == pks[0].name {
				ti.Columns[i].HasDefault = true
				ti.Columns[i].Nullable = false
			}
		}
	}
	if ti.Unique, err = c.uniqueIndexes(ctx, table); err != nil {
		return tableInfo{}, err
	}
	if len(ti.PrimaryKey) > 0 && !ti.HasUnique(ti.PrimaryKey) {
		ti.Unique = append([][]string{ti.PrimaryKey}, ti.Unique...)
	}
	return ti, nil
}

// uniqueIndexes lists the column sets of the table's unique indexes,
// skipping partial indexes and indexes on expressions, which cannot back
// an integration key.
func (c *Connector) uniqueIndexes(ctx context.Context, table string) ([][]string, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND partial = 0 ORDER BY seq`, table)
	if err != nil {
		return nil, fmt.Errorf("describe %s: indexes: %w", table, err)
	}
	var indexes []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("describe %s: indexes: %w", table, err)
		}
		indexes = append(indexes, name)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("describe %s: indexes: %w", table, err)
	}
	var out [][]string
	for _, idx := range indexes {
		cols, err := c.indexColumns(ctx, idx)
		if err != nil {
			return nil, fmt.Errorf("describe %s: index %s: %w", table, idx, err)
		}
		if cols != nil {
			out = append(out, cols)
		}
	}
	return out, nil
}

func (c *Connector) indexColumns(ctx context.Context, index string) ([]string, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, index)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var name sql.NullString
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if !name.Valid {
			return nil, rows.Err() // an expression: not usable as a key
		}
		cols = append(cols, name.String)
	}
	return cols, rows.Err()
}

// kindOf maps a declared column type to a Kind, following SQLite's own
// affinity rules where they apply, and returns the declared decimal scale
// (-1 when none).
func kindOf(declared string) (connector.Kind, int) {
	t := strings.ToUpper(strings.ReplaceAll(declared, `"`, ""))
	switch {
	case strings.Contains(t, "INT") && !strings.Contains(t, "POINT") && !strings.Contains(t, "INTERVAL"):
		return connector.KindInt, -1
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return connector.KindFloat, -1
	case strings.Contains(t, "NUMERIC"), strings.Contains(t, "DECIMAL"):
		return connector.KindDecimal, scaleOf(t)
	case strings.Contains(t, "BOOL"):
		return connector.KindBool, -1
	case strings.Contains(t, "BLOB"):
		return connector.KindBytes, -1
	case strings.Contains(t, "DATETIME"), strings.Contains(t, "TIMESTAMP"):
		return connector.KindTime, -1
	case strings.Contains(t, "DATE"):
		return connector.KindDate, -1
	case strings.Contains(t, "UUID"):
		return connector.KindUUID, -1
	case strings.Contains(t, "JSON"):
		return connector.KindJSON, -1
	}
	return connector.KindText, -1
}

// scaleOf returns s from a type written "NAME(p,s)", 0 from "NAME(p)" and
// -1 when the type has no precision.
func scaleOf(t string) int {
	open := strings.IndexByte(t, '(')
	end := strings.LastIndexByte(t, ')')
	if open < 0 || end < open {
		return -1
	}
	parts := strings.Split(t[open+1:end], ",")
	if len(parts) < 2 {
		return 0
	}
	s, err := strconv.Atoi(strings.TrimSpace(parts[1]))
	if err != nil || s < 0 {
		return -1
	}
	return s
}

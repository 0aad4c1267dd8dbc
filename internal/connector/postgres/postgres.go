// Package postgres is the PostgreSQL connector: catalog-based Describe,
// key-ordered Scan, transactional Apply with the stream position in the
// same transaction, and log-based capture through a logical replication
// slot with the built-in pgoutput plugin (see pgrepl and
// docs/adr/20261122-postgres-capture.md).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.Connector   = (*Connector)(nil)
	_ connector.Releaser    = (*Connector)(nil)
	_ connector.Checker     = (*Connector)(nil)
	_ connector.LagReporter = (*Connector)(nil)
)

// Options configure a Connector. Zero values take the documented defaults.
type Options struct {
	Logger *slog.Logger
	// Slot is the logical replication slot capture uses. Default
	// "dualwrite_" and a hash of the DSN.
	Slot string
	// Publication capture streams. Default: the slot name.
	Publication string
	// Origin is the replication origin the engine's writes are tagged
	// with, so that capture on this side drops them. Default "dualwrite".
	Origin string
}

// DefaultOrigin is the default replication origin name.
const DefaultOrigin = "dualwrite"

// echoMessagePrefix is the logical decoding message that marks the
// engine's own transactions when replication origins are not available.
const echoMessagePrefix = "dualwrite.apply"

// sessionParams make every session's text output parseable by
// pgrepl.DecodeText, whatever the server's defaults.
var sessionParams = map[string]string{
	"DateStyle":          "ISO, YMD",
	"TimeZone":           "UTC",
	"IntervalStyle":      "postgres",
	"bytea_output":       "hex",
	"extra_float_digits": "3",
	"application_name":   "dualwrite",
}

// Connector is one PostgreSQL side.
type Connector struct {
	log  *slog.Logger
	opts Options
	cfg  *pgconn.Config // normal sessions
	db   *sql.DB        // pool for reads and catalog queries

	tablesMu sync.Mutex
	tables   map[string]*tableInfo

	applyMu sync.Mutex
	applyC  *pgconn.PgConn // dedicated: it holds the replication origin
	echo    echoMode
	// staged names the apply session's staging tables known to exist
	// (created in a committed transaction or earlier in this one).
	staged map[string]bool
	// txStaged names the staging tables used in the current transaction.
	txStaged map[string]bool

	captureMu sync.Mutex
	capturers map[*capturer]struct{}

	// snap is the snapshot exported when capture created the slot, until
	// the initial sync imports it (snapshot.go).
	snapMu sync.Mutex
	snap   *exported

	// source is the identity of the source whose positions the progress
	// table records (ownership.go); "" checks nothing.
	source atomic.Pointer[string]

	// lastCommit is the commit time (unix ns) of the last transaction
	// capture received, for Lag.
	lastCommit atomic.Int64
}

// Open connects to the database named by dsn (a libpq keyword/value
// string or a postgres:// URL).
func Open(ctx context.Context, dsn string, o Options) (*Connector, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Slot == "" {
		h := fnv.New64a()
		h.Write([]byte(dsn))
		o.Slot = fmt.Sprintf("dualwrite_%016x", h.Sum64())
	}
	if o.Publication == "" {
		o.Publication = o.Slot
	}
	if o.Origin == "" {
		o.Origin = DefaultOrigin
	}
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "postgres dsn is not valid; use key=value pairs or a postgres:// URL")
	}
	// The session settings win over the DSN's (or PGTZ's) whatever their
	// case: both would be sent and either could take effect.
	for k := range pcfg.RuntimeParams {
		for p := range sessionParams {
			if strings.EqualFold(k, p) {
				delete(pcfg.RuntimeParams, k)
			}
		}
	}
	for k, v := range sessionParams {
		pcfg.RuntimeParams[k] = v
	}
	c := &Connector{
		log:       o.Logger.With("driver", "postgres", "slot", o.Slot),
		opts:      o,
		cfg:       &pcfg.Config,
		db:        stdlib.OpenDB(*pcfg),
		tables:    map[string]*tableInfo{},
		capturers: map[*capturer]struct{}{},
	}
	c.db.SetMaxOpenConns(8)
	c.db.SetConnMaxIdleTime(5 * time.Minute)
	if err := c.db.PingContext(ctx); err != nil {
		c.db.Close()
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot connect to PostgreSQL at %s:%d; check the dsn and that the server is running", pcfg.Host, pcfg.Port)
	}
	return c, nil
}

// Close closes the connector's connections and stops running capturers.
// It does not drop the slot or the publication (see Release).
func (c *Connector) Close() error {
	c.dropSnapshot()
	c.captureMu.Lock()
	caps := make([]*capturer, 0, len(c.capturers))
	for cp := range c.capturers {
		caps = append(caps, cp)
	}
	c.captureMu.Unlock()
	for _, cp := range caps {
		cp.Close()
	}
	c.applyMu.Lock()
	if c.applyC != nil {
		c.applyC.Close(context.Background())
		c.applyC = nil
	}
	c.applyMu.Unlock()
	return c.db.Close()
}

// withConn runs fn on a pooled session.
func (c *Connector) withConn(ctx context.Context, fn func(pc *pgconn.PgConn) error) error {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return problem.Wrap(problem.ConnectionFailed, err, "cannot connect to PostgreSQL; check that the server is running")
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		return fn(dc.(*stdlib.Conn).Conn().PgConn())
	})
}

// result is a query result decoded into canonical values.
type result struct {
	cols []string
	rows [][]any
	tag  pgconn.CommandTag
}

// named returns the result's rows keyed by column name.
func (r result) named() []change.Row {
	out := make([]change.Row, len(r.rows))
	for i, vals := range r.rows {
		row := make(change.Row, len(vals))
		for j, v := range vals {
			row[r.cols[j]] = v
		}
		out[i] = row
	}
	return out
}

// query runs one statement with text parameters typed by oids (0: let
// the server infer) and decodes the text result by column type.
func query(ctx context.Context, pc *pgconn.PgConn, sqlText string, oids []uint32, args []any) (result, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		b, err := pgrepl.EncodeText(a)
		if err != nil {
			return result{}, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		params[i] = b
	}
	if oids == nil {
		oids = make([]uint32, len(args))
	}
	rr := pc.ExecParams(ctx, sqlText, params, oids, nil, nil)
	var res result
	fds := rr.FieldDescriptions()
	for _, fd := range fds {
		res.cols = append(res.cols, fd.Name)
	}
	var decodeErr error
	for rr.NextRow() {
		vals := rr.Values()
		row := make([]any, len(vals))
		for i, v := range vals {
			if v == nil {
				continue
			}
			x, err := pgrepl.DecodeText(fds[i].DataTypeOID, v)
			if err != nil && decodeErr == nil {
				decodeErr = fmt.Errorf("column %s: %w", fds[i].Name, err)
			}
			row[i] = x
		}
		res.rows = append(res.rows, row)
	}
	tag, err := rr.Close()
	if err != nil {
		return result{}, err
	}
	res.tag = tag
	return res, decodeErr
}

// exec runs statements without parameters (DDL, transaction control).
func exec(ctx context.Context, pc *pgconn.PgConn, sqlText string) error {
	_, err := pc.Exec(ctx, sqlText).ReadAll()
	return err
}

// connectReplication opens a walsender session in logical mode.
func (c *Connector) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := c.cfg.Copy()
	cfg.RuntimeParams["replication"] = "database"
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return pc, nil
}

// connectSession opens a dedicated normal session.
func (c *Connector) connectSession(ctx context.Context) (*pgconn.PgConn, error) {
	return pgconn.ConnectConfig(ctx, c.cfg.Copy())
}

// splitName parses "table" or "schema.table".
func splitName(name string) (schema, table string) {
	if s, t, ok := strings.Cut(name, "."); ok {
		return s, t
	}
	return "public", name
}

func qi(s string) string { return pgrepl.QuoteIdent(s) }

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

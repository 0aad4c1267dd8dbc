// Package mysql is the MariaDB/MySQL connector. It reads and writes
// through github.com/go-sql-driver/mysql and captures changes by reading
// the binary log as a replica (package binlog).
//
// Echo suppression differs by flavour, detected at Open:
//   - MariaDB: the apply connections run with skip_replication=1, so the
//     server flags every event of the engine's transactions with
//     LOG_EVENT_SKIP_REPLICATION_F and the capturer drops them.
//   - MySQL has no such variable: each apply transaction also writes a
//     marker row into _dw_marker, and the capturer drops every
//     transaction that contains a row event on _dw_marker.
//
// Time: DATETIME has no zone; it is read and written as UTC. TIMESTAMP is
// an instant: sessions use time_zone '+00:00' so the SQL side and the
// binlog side agree. See docs/adr/20261122-mysql-capture.md.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.Connector   = (*Connector)(nil)
	_ connector.Checker     = (*Connector)(nil)
	_ connector.LagReporter = (*Connector)(nil)
	_ connector.Capturer    = (*Capturer)(nil)
	_ connector.EchoCounter = (*Capturer)(nil)
)

// Table names the connector owns in the connected database.
const (
	progressTable = "_dw_progress"
	markerTable   = "_dw_marker"
)

// Options tune a connector. Zero values take the defaults.
type Options struct {
	// Logger receives capture reconnects and similar events. Default:
	// slog.Default().
	Logger *slog.Logger
	// ServerID is the replica server id the binlog client registers with.
	// It must differ from the server's own id and from every other
	// replica's. Default: derived from the DSN and the process id. Each
	// further concurrent capture of the same connector uses the next id.
	ServerID uint32
	// Now is the clock for lag reporting. Default time.Now.
	Now func() time.Time
}

// Connector is one MariaDB/MySQL database (the DSN's database).
type Connector struct {
	cfg     *gomysql.Config // as given, for the binlog client
	schema  string
	db      *sql.DB // reads, metadata, Check, Lag
	applyDB *sql.DB // writes; skip_replication=1 on MariaDB
	mariaDB bool
	version string
	log     *slog.Logger
	now     func() time.Time

	serverID   uint32
	nextID     atomic.Uint32
	progressMu sync.Mutex
	progressOK bool

	// source is the identity of the source whose positions the progress
	// table records (ownership.go); "" checks nothing.
	source atomic.Pointer[string]

	capMu    sync.Mutex
	capturer *Capturer // the latest open capture, for Lag

	cache tableCache
}

// Open connects to the database named in dsn (go-sql-driver form, e.g.
// "root@tcp(127.0.0.1:3306)/erp") and detects the server flavour.
func Open(ctx context.Context, dsn string, o Options) (*Connector, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "mysql dsn is not valid; use the form user:password@tcp(host:3306)/database")
	}
	if cfg.DBName == "" {
		return nil, problem.New(problem.ConfigInvalid, "mysql dsn %q names no database; add /database after the address", redact(cfg))
	}
	// DATETIME values are read and written as UTC and TIMESTAMP crosses
	// the connection in UTC (docs/CONFIG.md, "Times and time zones"); a
	// DSN that asked for another zone would be silently overridden.
	if cfg.Loc != nil && cfg.Loc != time.UTC {
		return nil, problem.New(problem.ConfigInvalid, "mysql dsn sets loc=%s; dualwrite reads and writes DATETIME as UTC, so remove loc from the dsn (see docs/CONFIG.md, Times and time zones)", cfg.Loc)
	}
	for k := range cfg.Params {
		if strings.EqualFold(k, "time_zone") {
			return nil, problem.New(problem.ConfigInvalid, "mysql dsn sets time_zone; dualwrite sets the session time zone to UTC itself, so remove time_zone from the dsn (see docs/CONFIG.md, Times and time zones)")
		}
	}
	if cfg.Net != "tcp" {
		return nil, problem.New(problem.ConfigInvalid, "mysql dsn uses network %q; binlog capture needs tcp(host:port)", cfg.Net)
	}
	c := &Connector{cfg: cfg, schema: cfg.DBName, log: o.Logger, now: o.Now}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.db, err = openDB(cfg, nil)
	if err != nil {
		return nil, err
	}
	if err := c.db.PingContext(ctx); err != nil {
		c.db.Close()
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot connect to mysql at %s as %s; check that the server runs and the dsn's user, password and database", cfg.Addr, cfg.User)
	}
	var serverID uint32
	if err := c.db.QueryRowContext(ctx, "SELECT VERSION(), @@server_id").Scan(&c.version, &serverID); err != nil {
		c.db.Close()
		return nil, fmt.Errorf("read server version: %w", err)
	}
	c.mariaDB = strings.Contains(strings.ToLower(c.version), "mariadb")
	extra := map[string]string{}
	if c.mariaDB {
		// Every event the engine's transactions write is flagged
		// LOG_EVENT_SKIP_REPLICATION_F, which the capturer drops.
		extra["skip_replication"] = "1"
	}
	c.applyDB, err = openDB(cfg, extra)
	if err != nil {
		c.db.Close()
		return nil, err
	}
	c.serverID = o.ServerID
	if c.serverID == 0 {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s|%d", dsn, os.Getpid())
		c.serverID = h.Sum32()%(1<<30) + 1<<30
	}
	if c.serverID == serverID {
		c.serverID++
	}
	return c, nil
}

// openDB opens a pool with the session settings every connection needs.
func openDB(base *gomysql.Config, extra map[string]string) (*sql.DB, error) {
	cfg := base.Clone()
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = false
	cfg.Collation = "utf8mb4_general_ci"
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	delete(cfg.Params, "charset")
	// TIMESTAMP values cross the SQL interface in UTC, as in the binlog.
	cfg.Params["time_zone"] = "'+00:00'"
	// A NULL or a missing value for a NOT NULL column must fail, never
	// be replaced by an implicit default.
	cfg.Params["sql_mode"] = "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"
	for k, v := range extra {
		cfg.Params[k] = v
	}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "mysql dsn is not valid")
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

func redact(cfg *gomysql.Config) string {
	c := cfg.Clone()
	if c.Passwd != "" {
		c.Passwd = "xxxxx"
	}
	return c.FormatDSN()
}

// MariaDB reports whether the server is MariaDB (otherwise MySQL).
func (c *Connector) MariaDB() bool { return c.mariaDB }

// Close closes the connection pools. Open captures must be closed first.
func (c *Connector) Close() error {
	return errors.Join(c.applyDB.Close(), c.db.Close())
}

// quote quotes an identifier with backticks.
func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// splitTable resolves a configured table name: "name" is in the connected
// database, "db.name" in another.
func (c *Connector) splitTable(table string) (schema, name string) {
	if i := strings.IndexByte(table, '.'); i > 0 {
		return table[:i], table[i+1:]
	}
	return c.schema, table
}

func (c *Connector) qualified(table string) string {
	s, n := c.splitTable(table)
	return quote(s) + "." + quote(n)
}

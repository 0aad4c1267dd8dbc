package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// OpenReadOnly opens an existing database file to describe and check it,
// and never writes: no file is created (a missing one is an error), no
// table is prepared, the journal mode is left alone. `dualwrite validate`
// uses it. Apply and Capture fail on such a connector.
//
// The file is opened with mode=ro and, when no write-ahead log is beside
// it, immutable=1, so that SQLite does not create the -shm and -wal files a
// read of a WAL database otherwise needs. With a -wal file present (an
// application has the database open) it reads through the log.
func OpenReadOnly(ctx context.Context, dsn string, opts Options) (*Connector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	path := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, problem.New(problem.ConnectionFailed, "SQLite database %s does not exist; check the path (validate does not create it)", path)
		}
		return nil, openError(dsn, err)
	}
	q := url.Values{"mode": {"ro"}, "_pragma": {fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())}}
	if _, err := os.Stat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		q.Set("immutable", "1")
	}
	u := (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", u)
	if err != nil {
		return nil, openError(dsn, err)
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, openError(dsn, err)
	}
	c := &Connector{dsn: dsn, opts: opts, log: opts.Logger, tables: map[string]tableInfo{}, schema: -1, writer: db, reader: db}
	return c, nil
}

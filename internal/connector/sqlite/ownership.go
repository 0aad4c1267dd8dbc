package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.SourceIdentifier = (*Connector)(nil)
	_ connector.ProgressKeeper   = (*Connector)(nil)
	_ connector.OwnerKeeper      = (*Connector)(nil)
)

// initOwnership prepares the metadata, owner and progress source columns,
// idempotently: a progress table of an earlier version gets its source
// column.
func (c *Connector) initOwnership(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS _dw_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS _dw_owner (link TEXT PRIMARY KEY, instance TEXT NOT NULL, claimed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
	}
	for _, s := range stmts {
		if _, err := c.writer.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("prepare connector tables: %w", err)
		}
	}
	var n int
	if err := c.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('_dw_progress') WHERE name = 'source'`).Scan(&n); err != nil {
		return fmt.Errorf("read the columns of _dw_progress: %w", err)
	}
	if n == 0 {
		if _, err := c.writer.ExecContext(ctx, `ALTER TABLE _dw_progress ADD COLUMN source TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("add the source column to _dw_progress: %w", err)
		}
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if _, err := c.writer.ExecContext(ctx, `INSERT OR IGNORE INTO _dw_meta (k, v) VALUES ('database_uuid', ?)`, hex.EncodeToString(b)); err != nil {
		return fmt.Errorf("record the database uuid: %w", err)
	}
	return nil
}

// SourceIdentity is "sqlite:<uuid>", the uuid kept in the database's own
// _dw_meta table: change-table positions mean something only in the
// database that numbered them.
func (c *Connector) SourceIdentity(ctx context.Context) (string, error) {
	var id string
	if err := c.reader.QueryRowContext(ctx, `SELECT v FROM _dw_meta WHERE k = 'database_uuid'`).Scan(&id); err != nil {
		return "", fmt.Errorf("read the database uuid of %s: %w", c.dsn, err)
	}
	return "sqlite:" + id, nil
}

// BindSource implements connector.ProgressKeeper.
func (c *Connector) BindSource(source string) { c.source.Store(&source) }

func (c *Connector) boundSource() string {
	if p := c.source.Load(); p != nil {
		return *p
	}
	return ""
}

// appliedPosition reads a stream's applied position, refusing one
// recorded for another source than the bound one.
func (c *Connector) appliedPosition(ctx context.Context, q queryer, stream string) (change.Position, error) {
	var lsn, sub int64
	var token, source string
	err := q.QueryRowContext(ctx, `SELECT lsn, sub, token, source FROM _dw_progress WHERE stream = ?`, stream).Scan(&lsn, &sub, &token, &source)
	if errors.Is(err, sql.ErrNoRows) {
		return change.Position{}, nil
	}
	if err != nil {
		return change.Position{}, fmt.Errorf("read applied position of stream %s: %w", stream, err)
	}
	// Invariant: a position recorded for another source is never
	// compared with this source's positions.
	if want := c.boundSource(); want != "" && source != want {
		if source == "" {
			source = "unknown (recorded before positions carried their source)"
		}
		return change.Position{}, problem.Wrap(problem.ForeignPosition, connector.ErrForeignPosition,
			"the applied position of stream %s belongs to another source: expected %s, found %s; it is not compared with this source's positions; resync the map, or forget the position deliberately with `dualwrite ownership reset --stream %s`",
			stream, want, source, stream)
	}
	// LSNs are stored as the int64 with the same bits.
	return change.Position{LSN: uint64(lsn), Sub: uint32(sub), Token: token}, nil
}

// Progress implements connector.ProgressKeeper.
func (c *Connector) Progress(ctx context.Context) ([]connector.Progress, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT stream, lsn, sub, token, source FROM _dw_progress ORDER BY stream`)
	if err != nil {
		return nil, fmt.Errorf("list applied positions: %w", err)
	}
	defer rows.Close()
	var out []connector.Progress
	for rows.Next() {
		var p connector.Progress
		var lsn, sub int64
		if err := rows.Scan(&p.Stream, &lsn, &sub, &p.Position.Token, &p.Source); err != nil {
			return nil, fmt.Errorf("list applied positions: %w", err)
		}
		p.Position.LSN, p.Position.Sub = uint64(lsn), uint32(sub)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ResetProgress implements connector.ProgressKeeper.
func (c *Connector) ResetProgress(ctx context.Context, stream string) error {
	if _, err := c.writer.ExecContext(ctx, `DELETE FROM _dw_progress WHERE stream = ?`, stream); err != nil {
		return fmt.Errorf("reset applied position of %s: %w", stream, err)
	}
	return nil
}

// StampProgress implements connector.ProgressKeeper.
func (c *Connector) StampProgress(ctx context.Context, source string) (int64, error) {
	res, err := c.writer.ExecContext(ctx, `UPDATE _dw_progress SET source = ? WHERE source = ''`, source)
	if err != nil {
		return 0, fmt.Errorf("record the source of applied positions: %w", err)
	}
	return res.RowsAffected()
}

// Owner implements connector.OwnerKeeper.
func (c *Connector) Owner(ctx context.Context, link string) (string, error) {
	var owner string
	err := c.reader.QueryRowContext(ctx, `SELECT instance FROM _dw_owner WHERE link = ?`, link).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the owner of link %s: %w", link, err)
	}
	return owner, nil
}

// SetOwner implements connector.OwnerKeeper.
func (c *Connector) SetOwner(ctx context.Context, link, instance string) error {
	if _, err := c.writer.ExecContext(ctx, `INSERT INTO _dw_owner (link, instance) VALUES (?, ?)
		ON CONFLICT (link) DO UPDATE SET instance = excluded.instance, claimed_at = CURRENT_TIMESTAMP`, link, instance); err != nil {
		return fmt.Errorf("record the owner of link %s: %w", link, err)
	}
	return nil
}

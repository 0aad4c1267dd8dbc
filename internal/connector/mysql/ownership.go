package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.SourceIdentifier = (*Connector)(nil)
	_ connector.ProgressKeeper   = (*Connector)(nil)
	_ connector.OwnerKeeper      = (*Connector)(nil)
)

const (
	metaTable  = "_dw_meta"
	ownerTable = "_dw_owner"
)

// addSourceColumn adds the progress table's source column to a table of
// an earlier version (MySQL 8 has no ADD COLUMN IF NOT EXISTS).
func (c *Connector) addSourceColumn(ctx context.Context) error {
	var n int
	err := c.applyDB.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns
WHERE table_schema = ? AND table_name = ? AND column_name = 'source'`, c.schema, progressTable).Scan(&n)
	if err != nil {
		return fmt.Errorf("read the columns of %s.%s: %w", c.schema, progressTable, err)
	}
	if n > 0 {
		return nil
	}
	_, err = c.applyDB.ExecContext(ctx, "ALTER TABLE "+quote(progressTable)+" ADD COLUMN source varchar(512) NOT NULL DEFAULT ''")
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number == 1060 { // added concurrently
		err = nil
	}
	if err != nil {
		return fmt.Errorf("add the source column to %s.%s: %w", c.schema, progressTable, err)
	}
	return nil
}

// databaseUUID returns the uuid kept in the database's own _dw_meta
// table, creating it on first use: it tells a database from another of
// the same name (dropped and recreated, restored elsewhere).
func (c *Connector) databaseUUID(ctx context.Context) (string, error) {
	if _, err := c.applyDB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+quote(metaTable)+
		" (k varchar(64) NOT NULL PRIMARY KEY, v varchar(255) NOT NULL) ENGINE=InnoDB"); err != nil {
		return "", fmt.Errorf("create %s.%s: %w", c.schema, metaTable, err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	if _, err := c.applyDB.ExecContext(ctx, "INSERT IGNORE INTO "+quote(metaTable)+" (k, v) VALUES ('database_uuid', ?)", hex.EncodeToString(b)); err != nil {
		return "", fmt.Errorf("record the database uuid in %s.%s: %w", c.schema, metaTable, err)
	}
	var id string
	if err := c.applyDB.QueryRowContext(ctx, "SELECT v FROM "+quote(metaTable)+" WHERE k = 'database_uuid'").Scan(&id); err != nil {
		return "", fmt.Errorf("read the database uuid in %s.%s: %w", c.schema, metaTable, err)
	}
	return id, nil
}

// SourceIdentity names the binlog stream and the database. MySQL has
// @@server_uuid; MariaDB has none, so its server is named by server_id,
// binlog base name and GTID domain (not the host name, which a container
// changes on every recreation while its binlog goes on). The database's
// own uuid (_dw_meta) completes either.
func (c *Connector) SourceIdentity(ctx context.Context) (string, error) {
	dbID, err := c.databaseUUID(ctx)
	if err != nil {
		return "", err
	}
	if c.mariaDB {
		var serverID, domain int64
		var base sql.NullString
		if err := c.db.QueryRowContext(ctx, "SELECT @@server_id, @@log_bin_basename, @@gtid_domain_id").Scan(&serverID, &base, &domain); err != nil {
			return "", fmt.Errorf("read the server identity of %s: %w", c.cfg.Addr, err)
		}
		return fmt.Sprintf("mariadb:%d:%s/gtid-domain-%d/%s/%s", serverID, base.String, domain, c.schema, dbID), nil
	}
	var uuid string
	if err := c.db.QueryRowContext(ctx, "SELECT @@server_uuid").Scan(&uuid); err != nil {
		return "", fmt.Errorf("read the server uuid of %s: %w", c.cfg.Addr, err)
	}
	return fmt.Sprintf("mysql:%s/%s/%s", uuid, c.schema, dbID), nil
}

// BindSource implements connector.ProgressKeeper.
func (c *Connector) BindSource(source string) { c.source.Store(&source) }

func (c *Connector) boundSource() string {
	if p := c.source.Load(); p != nil {
		return *p
	}
	return ""
}

// foreign returns the DW2041 error when a stream's recorded source is not
// the expected one (nil when nothing is expected).
func foreign(stream, want, found string) error {
	if want == "" || found == want {
		return nil
	}
	if found == "" {
		found = "unknown (recorded before positions carried their source)"
	}
	return problem.Wrap(problem.ForeignPosition, connector.ErrForeignPosition,
		"the applied position of stream %s belongs to another source: expected %s, found %s; it is not compared with this source's positions; resync the map, or forget the position deliberately with `dualwrite ownership reset --stream %s`",
		stream, want, found, stream)
}

// Progress implements connector.ProgressKeeper.
func (c *Connector) Progress(ctx context.Context) ([]connector.Progress, error) {
	if err := c.ensureProgress(ctx); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, "SELECT stream, lsn, sub, token, source FROM "+quote(progressTable)+" ORDER BY stream")
	if err != nil {
		return nil, fmt.Errorf("list applied positions in %s: %w", c.schema, err)
	}
	defer rows.Close()
	var out []connector.Progress
	for rows.Next() {
		var p connector.Progress
		if err := rows.Scan(&p.Stream, &p.Position.LSN, &p.Position.Sub, &p.Position.Token, &p.Source); err != nil {
			return nil, fmt.Errorf("list applied positions in %s: %w", c.schema, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ResetProgress implements connector.ProgressKeeper.
func (c *Connector) ResetProgress(ctx context.Context, stream string) error {
	if err := c.ensureProgress(ctx); err != nil {
		return err
	}
	if _, err := c.applyDB.ExecContext(ctx, "DELETE FROM "+quote(progressTable)+" WHERE stream = ?", stream); err != nil {
		return fmt.Errorf("reset applied position of %s: %w", stream, err)
	}
	return nil
}

// StampProgress implements connector.ProgressKeeper.
func (c *Connector) StampProgress(ctx context.Context, source string) (int64, error) {
	if err := c.ensureProgress(ctx); err != nil {
		return 0, err
	}
	res, err := c.applyDB.ExecContext(ctx, "UPDATE "+quote(progressTable)+" SET source = ? WHERE source = ''", source)
	if err != nil {
		return 0, fmt.Errorf("record the source of applied positions: %w", err)
	}
	return res.RowsAffected()
}

// Owner implements connector.OwnerKeeper.
func (c *Connector) Owner(ctx context.Context, link string) (string, error) {
	var owner string
	err := c.db.QueryRowContext(ctx, "SELECT instance FROM "+quote(ownerTable)+" WHERE link = ?", link).Scan(&owner)
	var me *gomysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146:
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read the owner of link %s: %w", link, err)
	}
	return owner, nil
}

// SetOwner implements connector.OwnerKeeper.
func (c *Connector) SetOwner(ctx context.Context, link, instance string) error {
	if _, err := c.applyDB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+quote(ownerTable)+
		" (link varchar(255) NOT NULL PRIMARY KEY, instance varchar(64) NOT NULL, claimed_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB"); err != nil {
		return fmt.Errorf("create %s.%s: %w", c.schema, ownerTable, err)
	}
	if _, err := c.applyDB.ExecContext(ctx, "INSERT INTO "+quote(ownerTable)+" (link, instance) VALUES (?, ?) "+
		"ON DUPLICATE KEY UPDATE instance = VALUES(instance), claimed_at = CURRENT_TIMESTAMP", link, instance); err != nil {
		return fmt.Errorf("record the owner of link %s: %w", link, err)
	}
	return nil
}

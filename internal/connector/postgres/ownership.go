package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.SourceIdentifier = (*Connector)(nil)
	_ connector.ProgressKeeper   = (*Connector)(nil)
	_ connector.OwnerKeeper      = (*Connector)(nil)
	_ connector.ObjectKeeper     = (*Connector)(nil)
)

const ownerDDL = `CREATE SCHEMA IF NOT EXISTS dualwrite;
CREATE TABLE IF NOT EXISTS dualwrite.owner (
  link       text PRIMARY KEY,
  instance   text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
)`

// SourceIdentity is "postgres:<system identifier>/<database>/<slot>": LSNs
// are comparable only within one server's WAL, and the engine's position
// is the slot's.
func (c *Connector) SourceIdentity(ctx context.Context) (string, error) {
	var id string
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, `SELECT (SELECT system_identifier FROM pg_control_system())::text, current_database()::text`, nil, nil)
		if err != nil {
			return err
		}
		id = fmt.Sprintf("postgres:%s/%s/%s", res.rows[0][0].(string), res.rows[0][1].(string), c.opts.Slot)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read source identity (pg_control_system) of slot %s: %w", c.opts.Slot, err)
	}
	return id, nil
}

// BindSource implements connector.ProgressKeeper.
func (c *Connector) BindSource(source string) { c.source.Store(&source) }

func (c *Connector) boundSource() string {
	if p := c.source.Load(); p != nil {
		return *p
	}
	return ""
}

// readProgress reads a stream's applied position, refusing one recorded
// for another source than the bound one.
func (c *Connector) readProgress(ctx context.Context, pc *pgconn.PgConn, stream string, lock bool) (change.Position, error) {
	q := "SELECT lsn, sub, token, source FROM dualwrite.progress WHERE stream = $1"
	if lock {
		q += " FOR UPDATE"
	}
	res, err := query(ctx, pc, q, []uint32{25}, []any{stream})
	if err != nil {
		return change.Position{}, fmt.Errorf("read applied position of %s: %w", stream, err)
	}
	if len(res.rows) == 0 {
		return change.Position{}, nil
	}
	r := res.rows[0]
	// Invariant: a position recorded for another source is never
	// compared with this source's positions.
	if err := foreign(stream, c.boundSource(), r[3].(string)); err != nil {
		return change.Position{}, err
	}
	// The LSN column holds the uint64 bit pattern: LSNs of other sides
	// may use the top bit; comparisons happen in Go.
	return change.Position{LSN: uint64(r[0].(int64)), Sub: uint32(r[1].(int64)), Token: r[2].(string)}, nil
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

func (c *Connector) writeProgress(ctx context.Context, pc *pgconn.PgConn, stream string, p change.Position) error {
	_, err := query(ctx, pc, `INSERT INTO dualwrite.progress (stream, lsn, sub, token, source) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream) DO UPDATE SET lsn = EXCLUDED.lsn, sub = EXCLUDED.sub, token = EXCLUDED.token, source = EXCLUDED.source`,
		[]uint32{25, 20, 23, 25, 25}, []any{stream, int64(p.LSN), int64(p.Sub), p.Token, c.boundSource()})
	if err != nil {
		return fmt.Errorf("record applied position of %s: %w", stream, err)
	}
	return nil
}

// Progress implements connector.ProgressKeeper.
func (c *Connector) Progress(ctx context.Context) ([]connector.Progress, error) {
	var out []connector.Progress
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		if err := createProgress(ctx, pc); err != nil {
			return err
		}
		res, err := query(ctx, pc, "SELECT stream, lsn, sub, token, source FROM dualwrite.progress ORDER BY stream", nil, nil)
		if err != nil {
			return err
		}
		for _, r := range res.rows {
			out = append(out, connector.Progress{Stream: r[0].(string),
				Position: change.Position{LSN: uint64(r[1].(int64)), Sub: uint32(r[2].(int64)), Token: r[3].(string)}, Source: r[4].(string)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list applied positions: %w", err)
	}
	return out, nil
}

// ResetProgress implements connector.ProgressKeeper.
func (c *Connector) ResetProgress(ctx context.Context, stream string) error {
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		if err := createProgress(ctx, pc); err != nil {
			return err
		}
		_, err := query(ctx, pc, "DELETE FROM dualwrite.progress WHERE stream = $1", []uint32{25}, []any{stream})
		return err
	})
	if err != nil {
		return fmt.Errorf("reset applied position of %s: %w", stream, err)
	}
	return nil
}

// StampProgress implements connector.ProgressKeeper.
func (c *Connector) StampProgress(ctx context.Context, source string) (int64, error) {
	var n int64
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		if err := createProgress(ctx, pc); err != nil {
			return err
		}
		res, err := query(ctx, pc, "UPDATE dualwrite.progress SET source = $1 WHERE source = ''", []uint32{25}, []any{source})
		n = res.tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record the source of applied positions: %w", err)
	}
	return n, nil
}

// Owner implements connector.OwnerKeeper.
func (c *Connector) Owner(ctx context.Context, link string) (string, error) {
	var owner string
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, "SELECT instance FROM dualwrite.owner WHERE link = $1", []uint32{25}, []any{link})
		if code := pgCode(err); code == "42P01" || code == "3F000" { // never claimed
			return nil
		}
		if err != nil {
			return err
		}
		if len(res.rows) > 0 {
			owner = res.rows[0][0].(string)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the owner of link %s: %w", link, err)
	}
	return owner, nil
}

// SetOwner implements connector.OwnerKeeper.
func (c *Connector) SetOwner(ctx context.Context, link, instance string) error {
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		err := exec(ctx, pc, ownerDDL)
		if code := pgCode(err); code == "23505" || code == "42P06" || code == "42P07" {
			err = exec(ctx, pc, ownerDDL) // created concurrently
		}
		if err != nil {
			return problem.Wrap(problem.MissingPrivilege, err, "cannot create dualwrite.owner; grant the role CREATE on the database or create the schema dualwrite for it")
		}
		_, err = query(ctx, pc, `INSERT INTO dualwrite.owner (link, instance) VALUES ($1, $2)
ON CONFLICT (link) DO UPDATE SET instance = EXCLUDED.instance, claimed_at = now()`, []uint32{25, 25}, []any{link, instance})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the owner of link %s: %w", link, err)
	}
	return nil
}

// CaptureObjects implements connector.ObjectKeeper: the slot, the
// publication and the replication origins of this connector's names.
func (c *Connector) CaptureObjects(ctx context.Context) ([]connector.CaptureObject, error) {
	var out []connector.CaptureObject
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, `SELECT 'slot', slot_name::text FROM pg_replication_slots WHERE slot_name = $1
UNION ALL SELECT 'publication', pubname::text FROM pg_publication WHERE pubname = $2
UNION ALL SELECT 'origin', roname FROM pg_replication_origin WHERE roname = $3 OR roname LIKE $3 || '.%'
ORDER BY 1, 2`, []uint32{25, 25, 25}, []any{c.opts.Slot, c.opts.Publication, c.opts.Origin})
		if err != nil {
			return err
		}
		for _, r := range res.rows {
			out = append(out, connector.CaptureObject{Kind: r[0].(string), Name: r[1].(string)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the replication objects of slot %s: %w", c.opts.Slot, err)
	}
	return out, nil
}

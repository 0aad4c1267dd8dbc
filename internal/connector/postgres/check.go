package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
	"github.com/dualwrite/dualwrite/internal/problem"
)

const checkSQL = `SELECT current_setting('wal_level'),
  r.rolsuper, r.rolreplication,
  has_database_privilege(current_database(), 'CREATE'),
  current_setting('max_replication_slots')::int8,
  (SELECT count(*) FROM pg_replication_slots),
  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
  current_user::text
FROM pg_roles r WHERE r.rolname = current_user`

// Check reports server settings and privileges that keep capture and
// apply from working on the given tables.
func (c *Connector) Check(ctx context.Context, tables []string) []connector.Problem {
	var out []connector.Problem
	add := func(code problem.Code, format string, args ...any) {
		out = append(out, connector.Problem{Code: string(code), Message: fmt.Sprintf(format, args...)})
	}
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, checkSQL, []uint32{25}, []any{c.opts.Slot})
		if err != nil {
			return err
		}
		r := res.rows[0]
		walLevel, super, repl, create := r[0].(string), r[1].(bool), r[2].(bool), r[3].(bool)
		maxSlots, slots, haveSlot, user := r[4].(int64), r[5].(int64), r[6].(bool), r[7].(string)
		if walLevel != "logical" {
			add(problem.ServerSetting, "wal_level is %s, capture needs logical: run scripts/setup-postgres.sh or set wal_level=logical and restart PostgreSQL", walLevel)
		}
		if !super && !repl {
			add(problem.MissingPrivilege, "role %s lacks REPLICATION, which capture needs: run ALTER ROLE %s REPLICATION", user, pgrepl.QuoteIdent(user))
		}
		if !super && !create {
			add(problem.MissingPrivilege, "role %s cannot create the publication and the dualwrite schema: GRANT CREATE ON DATABASE to it", user)
		}
		if !haveSlot && slots >= maxSlots {
			add(problem.ServerSetting, "all %d replication slots are in use, capture needs one more: raise max_replication_slots (scripts/setup-postgres.sh) or drop unused slots", maxSlots)
		}
		for _, t := range tables {
			s, n := splitName(t)
			res, err := query(ctx, pc, `SELECT pg_has_role(current_user, c.relowner, 'USAGE')
FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
WHERE ns.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, []uint32{25, 25}, []any{s, n})
			if err != nil {
				return err
			}
			if len(res.rows) == 0 {
				continue // Describe reports missing tables (DW1021)
			}
			if owner := res.rows[0][0].(bool); !owner && !super {
				add(problem.MissingPrivilege, "role %s does not own table %s; a publication can only include tables the role owns: ALTER TABLE %s OWNER TO %s, or use the owner's role", user, t, t, pgrepl.QuoteIdent(user))
			}
		}
		return nil
	})
	if err != nil {
		add(problem.ConnectionFailed, "cannot check the server: %v; check the dsn and that PostgreSQL is running", err)
	}
	return out
}

// Lag reports how far the slot's confirmed position is behind the
// server's log.
func (c *Connector) Lag(ctx context.Context) (connector.Lag, error) {
	var lag connector.Lag
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::int8,
  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::int8
FROM pg_replication_slots WHERE slot_name = $1`, []uint32{25}, []any{c.opts.Slot})
		if err != nil || len(res.rows) == 0 {
			return err
		}
		lag.Bytes, lag.RetainedLog = res.rows[0][0].(int64), res.rows[0][1].(int64)
		return nil
	})
	if err != nil {
		return connector.Lag{}, fmt.Errorf("lag of slot %s: %w", c.opts.Slot, err)
	}
	if ns := c.lastCommit.Load(); ns != 0 && lag.Bytes > 0 {
		lag.Seconds = time.Since(time.Unix(0, ns)).Seconds()
	}
	return lag, nil
}

// Release stops capture and drops the slot and the publication, so no
// WAL stays pinned for a side no map uses.
func (c *Connector) Release(ctx context.Context) error {
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
	var errs []error
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		// The walsender of a just-closed stream may take a moment to let
		// go of the slot.
		for i := 0; ; i++ {
			_, err := query(ctx, pc, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", []uint32{25}, []any{c.opts.Slot})
			if err == nil {
				break
			}
			if pgCode(err) != "55006" || i >= 100 {
				return fmt.Errorf("drop slot %s: %w", c.opts.Slot, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		return nil
	})
	errs = append(errs, err)
	err = c.withConn(ctx, func(pc *pgconn.PgConn) error {
		if err := exec(ctx, pc, "DROP PUBLICATION IF EXISTS "+qi(c.opts.Publication)); err != nil {
			return fmt.Errorf("drop publication %s: %w", c.opts.Publication, err)
		}
		return nil
	})
	errs = append(errs, err)
	errs = append(errs, c.dropOrigins(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	c.log.Info("released replication slot and publication")
	return nil
}

// dropOrigins ends the apply session (which holds the replication origin)
// and drops the side's origins: each keeps a replication state slot, and
// the server has only max_replication_slots of them.
func (c *Connector) dropOrigins(ctx context.Context) error {
	c.applyMu.Lock()
	if c.applyC != nil {
		c.applyC.Close(ctx)
		c.applyC = nil
	}
	c.applyMu.Unlock()
	if c.opts.Origin == "" {
		return nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT roname FROM pg_replication_origin WHERE roname = $1 OR roname LIKE $1 || '.%'`, c.opts.Origin)
	if err != nil {
		return fmt.Errorf("list replication origins %s: %w", c.opts.Origin, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		// The apply session just closed may not have ended on the server
		// yet, and holds its origin until it does (55006): wait a little.
		// An origin active in another live session or a role without the
		// rights (42501) keeps it; nothing else depends on it.
		var err error
		for attempt := 0; attempt < 40; attempt++ {
			_, err = c.db.ExecContext(ctx, `SELECT pg_replication_origin_drop($1)`, n)
			if pgCode(err) != "55006" {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			c.log.Debug("replication origin kept", "origin", n, "err", err)
		}
	}
	return nil
}

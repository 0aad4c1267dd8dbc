package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// maxRowsPerInsert bounds one multi-row upsert statement.
const maxRowsPerInsert = 200

// ensureProgress creates the connector's own tables once per connector.
func (c *Connector) ensureProgress(ctx context.Context) error {
	c.progressMu.Lock()
	defer c.progressMu.Unlock()
	if c.progressOK {
		return nil
	}
	stmts := []string{`CREATE TABLE IF NOT EXISTS ` + quote(progressTable) + ` (
		stream varchar(255) NOT NULL PRIMARY KEY,
		lsn bigint unsigned NOT NULL,
		sub int unsigned NOT NULL,
		token varchar(255) NOT NULL) ENGINE=InnoDB`}
	if !c.mariaDB {
		stmts = append(stmts, `CREATE TABLE IF NOT EXISTS `+quote(markerTable)+` (
		stream varchar(255) NOT NULL PRIMARY KEY,
		n bigint unsigned NOT NULL) ENGINE=InnoDB`)
	}
	for _, s := range stmts {
		if _, err := c.applyDB.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create dualwrite tables in %s: %w", c.schema, err)
		}
	}
	c.progressOK = true
	return nil
}

// AppliedPosition returns the position last recorded for stream.
func (c *Connector) AppliedPosition(ctx context.Context, stream string) (change.Position, error) {
	var p change.Position
	err := c.db.QueryRowContext(ctx, "SELECT lsn, sub, token FROM "+quote(progressTable)+" WHERE stream = ?", stream).
		Scan(&p.LSN, &p.Sub, &p.Token)
	var me *gomysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146:
		return change.Position{}, nil
	case err != nil:
		return change.Position{}, fmt.Errorf("read applied position of stream %s: %w", stream, err)
	}
	return p, nil
}

// Apply writes the batch and its position in one transaction.
func (c *Connector) Apply(ctx context.Context, b connector.Batch) (connector.Result, error) {
	if len(b.Writes) > connector.MaxBatchRows {
		return connector.Result{}, fmt.Errorf("apply batch for stream %s: %d writes exceed the limit of %d per transaction", b.Stream, len(b.Writes), connector.MaxBatchRows)
	}
	if err := c.ensureProgress(ctx); err != nil {
		return connector.Result{}, err
	}
	tx, err := c.applyDB.BeginTx(ctx, nil)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply batch for stream %s: begin: %w", b.Stream, err)
	}
	res, err := c.applyTx(ctx, tx, b)
	if err != nil || res.Skipped {
		rerr := tx.Rollback()
		if err != nil {
			return connector.Result{}, err
		}
		if rerr != nil {
			return connector.Result{}, fmt.Errorf("apply batch for stream %s: rollback: %w", b.Stream, rerr)
		}
		return res, nil
	}
	// Invariant: the writes and the stream's applied position commit
	// together, in this one transaction.
	if err := tx.Commit(); err != nil {
		return connector.Result{}, fmt.Errorf("apply batch for stream %s: commit: %w", b.Stream, err)
	}
	return res, nil
}

func (c *Connector) applyTx(ctx context.Context, tx *sql.Tx, b connector.Batch) (connector.Result, error) {
	var res connector.Result
	if !b.Position.IsZero() {
		var cur change.Position
		err := tx.QueryRowContext(ctx, "SELECT lsn, sub FROM "+quote(progressTable)+" WHERE stream = ? FOR UPDATE", b.Stream).
			Scan(&cur.LSN, &cur.Sub)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return res, fmt.Errorf("apply batch for stream %s: read applied position: %w", b.Stream, err)
		case !cur.Less(b.Position):
			// Invariant: a batch not after the stored position was
			// applied before; applying is idempotent.
			res.Skipped = true
			return res, nil
		}
	}
	if !c.mariaDB {
		// Invariant: on MySQL every engine transaction carries a marker
		// row so the capturer recognises it as an echo.
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+quote(markerTable)+" (stream, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1", b.Stream); err != nil {
			return res, fmt.Errorf("apply batch for stream %s: write echo marker: %w", b.Stream, err)
		}
	}
	if b.Isolate {
		for i, w := range b.Writes {
			sp := fmt.Sprintf("dw_w%d", i)
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
				return res, fmt.Errorf("apply batch for stream %s: savepoint: %w", b.Stream, err)
			}
			if err := c.execWrites(ctx, tx, []connector.Write{w}); err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+sp); rerr != nil {
					return res, fmt.Errorf("apply batch for stream %s: rollback to savepoint: %w", b.Stream, rerr)
				}
				res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref,
					Err: problem.Wrap(problem.RowWriteFailed, err, "the database rejected the write to %s; fix the row or the map and retry", w.Table)})
				continue
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
				return res, fmt.Errorf("apply batch for stream %s: release savepoint: %w", b.Stream, err)
			}
		}
	} else {
		// Consecutive upserts of the same table and columns go in one
		// multi-row statement.
		for i := 0; i < len(b.Writes); {
			j := i + 1
			if b.Writes[i].Op == connector.Upsert {
				sig := upsertSig(b.Writes[i])
				for j < len(b.Writes) && j-i < maxRowsPerInsert && b.Writes[j].Op == connector.Upsert && upsertSig(b.Writes[j]) == sig {
					j++
				}
			}
			if err := c.execWrites(ctx, tx, b.Writes[i:j]); err != nil {
				return res, fmt.Errorf("apply batch for stream %s: write ref %d to %s: %w", b.Stream, b.Writes[i].Ref, b.Writes[i].Table, err)
			}
			i = j
		}
	}
	if !b.Position.IsZero() {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+quote(progressTable)+" (stream, lsn, sub, token) VALUES (?, ?, ?, ?) "+
			"ON DUPLICATE KEY UPDATE lsn = VALUES(lsn), sub = VALUES(sub), token = VALUES(token)",
			b.Stream, b.Position.LSN, b.Position.Sub, b.Position.Token); err != nil {
			return res, fmt.Errorf("apply batch for stream %s: record position: %w", b.Stream, err)
		}
	}
	return res, nil
}

func sortedKeys(r change.Row) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func upsertSig(w connector.Write) string {
	return w.Table + "\x00" + strings.Join(sortedKeys(w.Key), ",") + "\x00" + strings.Join(sortedKeys(w.Values), ",")
}

// execWrites runs one write, or several upserts with the same signature as
// one multi-row INSERT ... ON DUPLICATE KEY UPDATE.
func (c *Connector) execWrites(ctx context.Context, tx *sql.Tx, ws []connector.Write) error {
	w := ws[0]
	if len(w.Key) == 0 {
		return errors.New("write has no key")
	}
	keys := sortedKeys(w.Key)
	var vals []string
	for _, n := range sortedKeys(w.Values) {
		if _, isKey := w.Key[n]; !isKey {
			vals = append(vals, n)
		}
	}
	var q string
	var args []any
	add := func(v any) error {
		a, err := toSQL(v)
		if err != nil {
			return err
		}
		args = append(args, a)
		return nil
	}
	switch w.Op {
	case connector.Upsert:
		cols := append(append([]string{}, keys...), vals...)
		qc := make([]string, len(cols))
		ph := make([]string, len(cols))
		for i, n := range cols {
			qc[i], ph[i] = quote(n), "?"
		}
		tuple := "(" + strings.Join(ph, ", ") + ")"
		tuples := make([]string, len(ws))
		for i, x := range ws {
			tuples[i] = tuple
			for _, n := range keys {
				if err := add(x.Key[n]); err != nil {
					return fmt.Errorf("key %s: %w", n, err)
				}
			}
			for _, n := range vals {
				if err := add(x.Values[n]); err != nil {
					return fmt.Errorf("column %s: %w", n, err)
				}
			}
		}
		// MySQL upserts on any unique key, not only on w.Key: see the
		// ADR. The key has a unique index, so a row with the same key
		// is always the one updated.
		set := make([]string, 0, len(vals))
		for _, n := range vals {
			set = append(set, quote(n)+" = VALUES("+quote(n)+")")
		}
		if len(set) == 0 {
			set = append(set, quote(keys[0])+" = "+quote(keys[0]))
		}
		q = fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON DUPLICATE KEY UPDATE %s",
			c.qualified(w.Table), strings.Join(qc, ", "), strings.Join(tuples, ", "), strings.Join(set, ", "))
	case connector.UpdateOnly:
		if len(vals) == 0 {
			return nil
		}
		set := make([]string, len(vals))
		for i, n := range vals {
			set[i] = quote(n) + " = ?"
			if err := add(w.Values[n]); err != nil {
				return fmt.Errorf("column %s: %w", n, err)
			}
		}
		where, err := keyWhere(keys, w.Key, add)
		if err != nil {
			return err
		}
		q = fmt.Sprintf("UPDATE %s SET %s WHERE %s", c.qualified(w.Table), strings.Join(set, ", "), where)
	case connector.Delete:
		where, err := keyWhere(keys, w.Key, add)
		if err != nil {
			return err
		}
		q = fmt.Sprintf("DELETE FROM %s WHERE %s", c.qualified(w.Table), where)
	default:
		return fmt.Errorf("unknown write op %d", w.Op)
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

func keyWhere(keys []string, key change.Row, add func(any) error) (string, error) {
	terms := make([]string, len(keys))
	for i, n := range keys {
		if key[n] == nil {
			return "", fmt.Errorf("key column %s is NULL", n)
		}
		terms[i] = quote(n) + " = ?"
		if _, ok := key[n].(change.Decimal); ok {
			terms[i] = quote(n) + " = CAST(? AS DECIMAL(65,30))"
		}
		if err := add(key[n]); err != nil {
			return "", fmt.Errorf("key %s: %w", n, err)
		}
	}
	return strings.Join(terms, " AND "), nil
}

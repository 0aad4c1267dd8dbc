package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// maxRowsPerInsert bounds one multi-row upsert statement.
const maxRowsPerInsert = 500

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
	if err := c.addSourceColumn(ctx); err != nil {
		return err
	}
	c.progressOK = true
	return nil
}

// AppliedPosition returns the position last recorded for stream.
func (c *Connector) AppliedPosition(ctx context.Context, stream string) (change.Position, error) {
	var p change.Position
	var source string
	if err := c.ensureProgress(ctx); err != nil {
		return change.Position{}, err
	}
	err := c.db.QueryRowContext(ctx, "SELECT lsn, sub, token, source FROM "+quote(progressTable)+" WHERE stream = ?", stream).
		Scan(&p.LSN, &p.Sub, &p.Token, &source)
	var me *gomysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146:
		return change.Position{}, nil
	case err != nil:
		return change.Position{}, fmt.Errorf("read applied position of stream %s: %w", stream, err)
	}
	if err := foreign(stream, c.boundSource(), source); err != nil {
		return change.Position{}, err
	}
	return p, nil
}

// Apply writes the batch and its position in one transaction.
func (c *Connector) Apply(ctx context.Context, b connector.Batch) (connector.Result, error) {
	if len(b.Writes) > connector.MaxBatchRows {
		return connector.Result{}, fmt.Errorf("apply batch for stream %s: %d writes exceed the limit of %d per transaction", b.Stream, len(b.Writes), connector.MaxBatchRows)
	}
	// Invariant: a malformed reference fails the batch before anything
	// is written.
	rs, err := connector.NewResolver(b.Writes)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
	}
	if err := c.ensureProgress(ctx); err != nil {
		return connector.Result{}, err
	}
	tx, err := c.applyDB.BeginTx(ctx, nil)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply batch for stream %s: begin: %w", b.Stream, err)
	}
	res, err := c.applyTx(ctx, tx, b, rs)
	if err != nil || len(res.Failed) > 0 {
		// A table may have been altered: describe it again next time.
		for _, w := range b.Writes {
			c.forget(w.Table)
		}
	}
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

func (c *Connector) applyTx(ctx context.Context, tx *sql.Tx, b connector.Batch, rs *connector.Resolver) (connector.Result, error) {
	var res connector.Result
	if !b.Position.IsZero() {
		var cur change.Position
		var source string
		err := tx.QueryRowContext(ctx, "SELECT lsn, sub, source FROM "+quote(progressTable)+" WHERE stream = ? FOR UPDATE", b.Stream).
			Scan(&cur.LSN, &cur.Sub, &source)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return res, fmt.Errorf("apply batch for stream %s: read applied position: %w", b.Stream, err)
		case foreign(b.Stream, c.boundSource(), source) != nil:
			// Invariant: a position recorded for another source is never
			// compared with this source's positions.
			return res, foreign(b.Stream, c.boundSource(), source)
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
	tables := map[string]*tableInfo{}
	for _, w := range b.Writes {
		if tables[w.Table] != nil {
			continue
		}
		ti, err := c.info(ctx, w.Table)
		if err != nil {
			return res, fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
		}
		tables[w.Table] = ti
	}
	equal := b.Equal
	if equal == nil {
		equal = func(have, want any) bool { return reflect.DeepEqual(have, want) }
	}
	var read connector.ReadBack
	if rs != nil {
		read = c.readBack(tx, tables)
	}
	// done records the outcome of write i for the resolver.
	done := func(i int, unmatched bool) {
		if unmatched {
			// Nothing was written, so the write did not fail.
			res.Unmatched = append(res.Unmatched, b.Writes[i].Ref)
			rs.Unmatched(i)
			return
		}
		rs.Wrote(i, i+1)
	}
	if b.Isolate {
		// one writes b.Writes[i] under its own savepoint.
		one := func(i int) error {
			w := b.Writes[i]
			if rs != nil {
				ws, err := rs.Prepare(ctx, i, i+1, read)
				if err != nil {
					if !errors.Is(err, connector.ErrRefUnresolved) {
						return fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
					}
					rs.Failed(i)
					res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
					return nil
				}
				w = ws[0]
			}
			sp := fmt.Sprintf("dw_w%d", i)
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
				return fmt.Errorf("apply batch for stream %s: savepoint: %w", b.Stream, err)
			}
			unmatched, err := c.applyWrite(ctx, tx, tables[w.Table], w, equal)
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+sp); rerr != nil {
					return fmt.Errorf("apply batch for stream %s: rollback to savepoint: %w", b.Stream, rerr)
				}
				rs.Failed(i)
				res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref,
					Err: problem.Wrap(problem.RowWriteFailed, err, "the database rejected the write to %s; fix the row or the map and retry", w.Table)})
				return nil
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
				return fmt.Errorf("apply batch for stream %s: release savepoint: %w", b.Stream, err)
			}
			done(i, unmatched)
			return nil
		}
		// A run of same-shaped plain upserts or inserts (what the initial
		// sync writes) is tried as multi-row statements under one
		// savepoint, and split around its bad rows when that fails. Its
		// Ref values are resolved before it, its Return columns read
		// after it with one keyed query when needed.
		bulk := func(lo, hi int) (bool, error) {
			ws := b.Writes[lo:hi]
			if rs != nil {
				var err error
				if ws, err = rs.Prepare(ctx, lo, hi, read); err != nil {
					if errors.Is(err, connector.ErrRefUnresolved) {
						return false, nil // the run in parts finds the write
					}
					return false, fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
				}
			}
			ok, err := c.bulkIsolated(ctx, tx, tables[b.Writes[lo].Table], ws)
			if err != nil {
				return false, fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
			}
			if ok {
				rs.Wrote(lo, hi)
			}
			return ok, nil
		}
		runEnd := func(i int) int { return rs.RunEnd(i, upsertRun(b.Writes, tables, i, connector.MinBulkRun)) }
		if err := connector.WriteRuns(len(b.Writes), runEnd, bulk, one, true); err != nil {
			return res, err
		}
	} else {
		// Consecutive upserts of the same table and columns go in one
		// multi-row statement.
		for i := 0; i < len(b.Writes); {
			w := b.Writes[i]
			j := i + 1
			if !conditional(w) {
				j = rs.RunEnd(i, max(j, upsertRun(b.Writes, tables, i, 2)))
			}
			ws := b.Writes[i:j]
			if rs != nil {
				var err error
				if ws, err = rs.Prepare(ctx, i, j, read); err != nil {
					return res, fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
				}
			}
			if conditional(w) {
				unmatched, err := c.applyWrite(ctx, tx, tables[w.Table], ws[0], equal)
				if err != nil {
					return res, fmt.Errorf("apply batch for stream %s: write ref %d to %s: %w", b.Stream, w.Ref, w.Table, err)
				}
				done(i, unmatched)
				i = j
				continue
			}
			for k := 0; k < len(ws); k += rowsPerInsert(w) {
				if err := c.execWrites(ctx, tx, tables[w.Table], ws[k:min(len(ws), k+rowsPerInsert(w))]); err != nil {
					return res, fmt.Errorf("apply batch for stream %s: write ref %d to %s: %w", b.Stream, w.Ref, w.Table, err)
				}
			}
			rs.Wrote(i, j)
			i = j
		}
	}
	if rs != nil {
		var err error
		if res.Returned, err = rs.Finish(ctx, read); err != nil {
			return res, fmt.Errorf("apply batch for stream %s: %w", b.Stream, err)
		}
	}
	if !b.Position.IsZero() {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+quote(progressTable)+" (stream, lsn, sub, token, source) VALUES (?, ?, ?, ?, ?) "+
			"ON DUPLICATE KEY UPDATE lsn = VALUES(lsn), sub = VALUES(sub), token = VALUES(token), source = VALUES(source)",
			b.Stream, b.Position.LSN, b.Position.Sub, b.Position.Token, c.boundSource()); err != nil {
			return res, fmt.Errorf("apply batch for stream %s: record position: %w", b.Stream, err)
		}
	}
	return res, nil
}

// conditional reports whether a write depends on the row's current state
// (Expect, InsertOnly) and so must read it before writing.
func conditional(w connector.Write) bool {
	return len(w.Expect) > 0 || w.Op == connector.InsertOnly
}

// applyWrite runs one write and reports whether it was a conditional
// write left unapplied because the row did not match. Unconditional
// writes take the plain path of execWrites.
func (c *Connector) applyWrite(ctx context.Context, tx *sql.Tx, ti *tableInfo, w connector.Write, equal func(have, want any) bool) (bool, error) {
	if !conditional(w) {
		return false, c.execWrites(ctx, tx, ti, []connector.Write{w})
	}
	if len(w.Key) == 0 {
		return false, errors.New("write has no key")
	}
	found, matched, err := c.match(ctx, tx, ti, w, equal)
	switch {
	case err != nil:
		return false, err
	case found && (w.Op == connector.InsertOnly || !matched):
		return true, nil
	case found:
		return false, c.execWrites(ctx, tx, ti, []connector.Write{w})
	case w.Op == connector.UpdateOnly, w.Op == connector.Delete:
		return false, nil // a missing row is ignored, whatever Expect says
	case w.Op == connector.InsertOnly:
		err := c.insertRow(ctx, tx, w)
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1062 {
			// Under READ COMMITTED the locking read takes no gap lock, so
			// the application may have inserted the key meanwhile.
			if found, _, merr := c.match(ctx, tx, ti, w, equal); merr == nil && found {
				return true, nil
			}
		}
		return false, err
	}
	// Upsert of a missing row: insert it. The locking read above holds
	// the gap under REPEATABLE READ, so no other row with the key can
	// appear first.
	return false, c.execWrites(ctx, tx, ti, []connector.Write{w})
}

// match locks the row with w's key (SELECT ... FOR UPDATE) and reports
// whether it exists and whether its current values of the Expect columns,
// decoded as Scan decodes them, equal w.Expect.
func (c *Connector) match(ctx context.Context, tx *sql.Tx, ti *tableInfo, w connector.Write, equal func(have, want any) bool) (found, matched bool, err error) {
	names := sortedKeys(w.Expect)
	infos := make([]colInfo, len(names))
	sel := make([]string, 0, len(names)+1)
	for i, n := range names {
		ci, ok := ti.column(n)
		if !ok {
			return false, false, fmt.Errorf("expected column %s is not a column of %s", n, w.Table)
		}
		infos[i] = ci
		sel = append(sel, quote(n))
	}
	if len(sel) == 0 {
		sel = append(sel, "1")
	}
	var args []any
	add := func(v any) error {
		a, err := toSQL(v)
		args = append(args, a)
		return err
	}
	where, err := keyWhere(sortedKeys(w.Key), w.Key, add)
	if err != nil {
		return false, false, err
	}
	vals := make([]any, len(sel))
	ptrs := make([]any, len(sel))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err = tx.QueryRowContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s FOR UPDATE", strings.Join(sel, ", "), c.qualified(w.Table), where), args...).Scan(ptrs...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read the row to compare with the expected values: %w", err)
	}
	for i, ci := range infos {
		have, err := fromSQL(ci, vals[i])
		if err != nil {
			return false, false, fmt.Errorf("read the row to compare with the expected values: %w", err)
		}
		if !equal(have, w.Expect[ci.Name]) {
			return true, false, nil
		}
	}
	return true, true, nil
}

// insertRow inserts the write's key and values as a new row.
func (c *Connector) insertRow(ctx context.Context, tx *sql.Tx, w connector.Write) error {
	return c.insertRows(ctx, tx, []connector.Write{w}, "")
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
func (c *Connector) execWrites(ctx context.Context, tx *sql.Tx, ti *tableInfo, ws []connector.Write) error {
	w := ws[0]
	if len(w.Key) == 0 {
		return errors.New("write has no key")
	}
	if w.Op == connector.Upsert && !insertable(ti, w) {
		return c.updateThenInsert(ctx, tx, w)
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
		return c.insertRows(ctx, tx, ws, " ON DUPLICATE KEY UPDATE "+strings.Join(set, ", "))
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

// insertable reports whether an upsert names every NOT NULL column that
// has no default. Only then can it be one INSERT ... ON DUPLICATE KEY
// UPDATE: in strict mode the server rejects such an INSERT for the missing
// column even when the row exists and would only be updated.
func insertable(ti *tableInfo, w connector.Write) bool {
	for _, ci := range ti.Columns {
		if ci.HasDefault {
			continue
		}
		_, inKey := w.Key[ci.Name]
		_, inValues := w.Values[ci.Name]
		if !inKey && !inValues {
			return false
		}
	}
	return true
}

// updateThenInsert upserts a partial row: UPDATE by key, and INSERT when
// no row matched (which fails, as it should, when a NOT NULL column is
// missing). An INSERT that loses a race with a concurrent insert of the
// same key falls back to the UPDATE.
func (c *Connector) updateThenInsert(ctx context.Context, tx *sql.Tx, w connector.Write) error {
	keys := sortedKeys(w.Key)
	var vals []string
	for _, n := range sortedKeys(w.Values) {
		if _, isKey := w.Key[n]; !isKey {
			vals = append(vals, n)
		}
	}
	update := func() (bool, error) {
		var args []any
		add := func(v any) error {
			a, err := toSQL(v)
			args = append(args, a)
			return err
		}
		set := make([]string, 0, len(vals)+1)
		for _, n := range vals {
			set = append(set, quote(n)+" = ?")
			if err := add(w.Values[n]); err != nil {
				return false, fmt.Errorf("column %s: %w", n, err)
			}
		}
		if len(set) == 0 {
			set = append(set, quote(keys[0])+" = "+quote(keys[0]))
		}
		where, err := keyWhere(keys, w.Key, add)
		if err != nil {
			return false, err
		}
		// Lock and count the row: RowsAffected of an UPDATE counts only
		// changed rows.
		var n int
		if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s FOR UPDATE", c.qualified(w.Table), where), args[len(vals):]...).Scan(&n); err != nil {
			return false, err
		}
		if n == 0 {
			return false, nil
		}
		if len(vals) == 0 {
			return true, nil
		}
		_, err = tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s WHERE %s", c.qualified(w.Table), strings.Join(set, ", "), where), args...)
		return true, err
	}
	found, err := update()
	if err != nil || found {
		return err
	}
	err = c.insertRow(ctx, tx, w)
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 {
		found, err = update()
		if err == nil && !found {
			return errors.New("row vanished between a duplicate-key insert and the retried update")
		}
	}
	return err
}

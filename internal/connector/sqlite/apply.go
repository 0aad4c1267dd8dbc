package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// Apply writes the batch and its position in one transaction.
func (c *Connector) Apply(ctx context.Context, b connector.Batch) (connector.Result, error) {
	if len(b.Writes) > connector.MaxBatchRows {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: %d writes exceed the limit of %d per transaction", b.Stream, len(b.Writes), connector.MaxBatchRows)
	}
	// Describe before the transaction: the writer has one connection.
	tables := map[string]tableInfo{}
	for _, w := range b.Writes {
		if _, ok := tables[w.Table]; ok {
			continue
		}
		ti, err := c.table(ctx, w.Table)
		if err != nil {
			return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
		}
		tables[w.Table] = ti
	}

	tx, err := c.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see withParams)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: begin: %w", b.Stream, err)
	}
	defer func() { _ = tx.Rollback() }()

	if !b.Position.IsZero() {
		applied, err := appliedPosition(ctx, tx, b.Stream)
		if err != nil {
			return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
		}
		// Invariant: apply is idempotent; a batch at or before the stream's
		// recorded position was already applied and is skipped.
		if !applied.Less(b.Position) {
			return connector.Result{Skipped: true}, nil
		}
	}
	// Invariant: the marker is 1 only inside this transaction, so the
	// capture triggers tag exactly the engine's own writes as echoes.
	if _, err := tx.ExecContext(ctx, `UPDATE _dw_marker SET active = 1 WHERE id = 1`); err != nil {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: set echo marker: %w", b.Stream, err)
	}

	var res connector.Result
	for _, w := range b.Writes {
		query, args, err := writeSQL(tables[w.Table], w)
		if err != nil {
			if b.Isolate {
				res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
				continue
			}
			return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
		}
		if query == "" {
			continue
		}
		if !b.Isolate {
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				return connector.Result{}, fmt.Errorf("apply batch of stream %s: %s %s key %v: %w", b.Stream, opName(w.Op), w.Table, w.Key, err)
			}
			continue
		}
		if err := execIsolated(ctx, tx, query, args); err != nil {
			var fatal *fatalError
			if errors.As(err, &fatal) {
				return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, fatal.err)
			}
			res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref,
				Err: fmt.Errorf("%s %s key %v: %w", opName(w.Op), w.Table, w.Key, err)})
		}
	}

	if _, err := tx.ExecContext(ctx, `UPDATE _dw_marker SET active = 0 WHERE id = 1`); err != nil {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: reset echo marker: %w", b.Stream, err)
	}
	if !b.Position.IsZero() {
		// Invariant: the applied position commits in the same transaction
		// as the writes.
		if _, err := tx.ExecContext(ctx, `INSERT INTO _dw_progress (stream, lsn, sub, token) VALUES (?, ?, ?, ?)
			ON CONFLICT (stream) DO UPDATE SET lsn = excluded.lsn, sub = excluded.sub, token = excluded.token`,
			b.Stream, int64(b.Position.LSN), int64(b.Position.Sub), b.Position.Token); err != nil {
			return connector.Result{}, fmt.Errorf("apply batch of stream %s: record position %v: %w", b.Stream, b.Position, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: commit: %w", b.Stream, err)
	}
	return res, nil
}

// fatalError is a failure that leaves the transaction unusable, so an
// isolated batch cannot go on.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// execIsolated runs one write inside its own savepoint and rolls back to it
// when the write fails.
func execIsolated(ctx context.Context, tx *sql.Tx, query string, args []any) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT dw_write`); err != nil {
		return &fatalError{fmt.Errorf("savepoint: %w", err)}
	}
	_, werr := tx.ExecContext(ctx, query, args...)
	if werr != nil {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO dw_write`); err != nil {
			return &fatalError{fmt.Errorf("roll back failed write (%v): %w", werr, err)}
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE dw_write`); err != nil {
		return &fatalError{fmt.Errorf("release savepoint: %w", err)}
	}
	return werr
}

func opName(op connector.WriteOp) string {
	switch op {
	case connector.Upsert:
		return "upsert into"
	case connector.UpdateOnly:
		return "update"
	case connector.Delete:
		return "delete from"
	}
	return fmt.Sprintf("op(%d) on", op)
}

// writeSQL builds the statement for one write. An empty query means there
// is nothing to do (an update without values).
func writeSQL(ti tableInfo, w connector.Write) (string, []any, error) {
	if len(w.Key) == 0 {
		return "", nil, fmt.Errorf("%s %s: the write has no key", opName(w.Op), w.Table)
	}
	keys := sortedNames(w.Key, nil)
	vals := sortedNames(w.Values, w.Key)
	stored := func(name string, v any) (any, error) {
		ci, ok := ti.cols[name]
		if !ok {
			return nil, fmt.Errorf("%s %s: no column %q", opName(w.Op), w.Table, name)
		}
		sv, err := toStored(ci.kind, v)
		if err != nil {
			return nil, fmt.Errorf("%s %s: column %s: %w", opName(w.Op), w.Table, name, err)
		}
		return sv, nil
	}
	var args []any
	var where []string
	whereArgs := func() error {
		for _, k := range keys {
			v, err := stored(k, w.Key[k])
			if err != nil {
				return err
			}
			if v == nil {
				where = append(where, quote(k)+" IS NULL")
				continue
			}
			where = append(where, quote(k)+" = ?")
			args = append(args, v)
		}
		return nil
	}

	switch w.Op {
	case connector.Upsert:
		cols := append(append([]string{}, keys...), vals...)
		qcols := make([]string, len(cols))
		ph := make([]string, len(cols))
		for i, col := range cols {
			v := w.Key[col]
			if i >= len(keys) {
				v = w.Values[col]
			}
			sv, err := stored(col, v)
			if err != nil {
				return "", nil, err
			}
			args = append(args, sv)
			qcols[i], ph[i] = quote(col), "?"
		}
		q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO ", quote(w.Table),
			strings.Join(qcols, ", "), strings.Join(ph, ", "), strings.Join(qcols[:len(keys)], ", "))
		if len(vals) == 0 {
			return q + "NOTHING", args, nil
		}
		set := make([]string, len(vals))
		for i, v := range vals {
			set[i] = fmt.Sprintf("%s = excluded.%s", quote(v), quote(v))
		}
		return q + "UPDATE SET " + strings.Join(set, ", "), args, nil
	case connector.UpdateOnly:
		if len(vals) == 0 {
			return "", nil, nil
		}
		set := make([]string, len(vals))
		for i, col := range vals {
			sv, err := stored(col, w.Values[col])
			if err != nil {
				return "", nil, err
			}
			set[i] = quote(col) + " = ?"
			args = append(args, sv)
		}
		if err := whereArgs(); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("UPDATE %s SET %s WHERE %s", quote(w.Table), strings.Join(set, ", "), strings.Join(where, " AND ")), args, nil
	case connector.Delete:
		if err := whereArgs(); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("DELETE FROM %s WHERE %s", quote(w.Table), strings.Join(where, " AND ")), args, nil
	}
	return "", nil, fmt.Errorf("%s: unknown write op %d", w.Table, w.Op)
}

// sortedNames returns the names of row not in skip, sorted.
func sortedNames(row, skip change.Row) []string {
	out := make([]string, 0, len(row))
	for n := range row {
		if _, ok := skip[n]; !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func appliedPosition(ctx context.Context, q queryer, stream string) (change.Position, error) {
	var lsn, sub int64
	var token string
	err := q.QueryRowContext(ctx, `SELECT lsn, sub, token FROM _dw_progress WHERE stream = ?`, stream).Scan(&lsn, &sub, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return change.Position{}, nil
	}
	if err != nil {
		return change.Position{}, fmt.Errorf("read applied position of stream %s: %w", stream, err)
	}
	// LSNs are stored as the int64 with the same bits.
	return change.Position{LSN: uint64(lsn), Sub: uint32(sub), Token: token}, nil
}

// AppliedPosition returns the last position Apply recorded for stream.
func (c *Connector) AppliedPosition(ctx context.Context, stream string) (change.Position, error) {
	return appliedPosition(ctx, c.reader, stream)
}

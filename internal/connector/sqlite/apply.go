package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
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
	// Invariant: a malformed reference fails the batch before anything
	// is written.
	rs, err := connector.NewResolver(b.Writes)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
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
		applied, err := c.appliedPosition(ctx, tx, b.Stream)
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

	equal := b.Equal
	if equal == nil {
		equal = func(have, want any) bool { return reflect.DeepEqual(have, want) }
	}
	var res connector.Result
	var read connector.ReadBack
	if rs != nil {
		read = readBack(tx, tables)
	}
	for i, w := range b.Writes {
		if rs != nil {
			ws, err := rs.Prepare(ctx, i, i+1, read)
			if err != nil {
				if b.Isolate && errors.Is(err, connector.ErrRefUnresolved) {
					rs.Failed(i)
					res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
					continue
				}
				return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
			}
			w = ws[0]
		}
		p, err := planWrite(tables[w.Table], w)
		if err != nil {
			if b.Isolate {
				rs.Failed(i)
				res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
				continue
			}
			return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
		}
		if w.Op == connector.InsertOnly || len(w.Expect) > 0 {
			// The check only reads, so an unmatched write needs no
			// savepoint: nothing was written.
			o, err := checkExpect(ctx, tx, tables[w.Table], w, equal)
			if err != nil {
				if b.Isolate {
					rs.Failed(i)
					res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
					continue
				}
				return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
			}
			switch o {
			case outcomeUnmatched:
				res.Unmatched = append(res.Unmatched, w.Ref)
				rs.Unmatched(i)
				continue
			case outcomeSkip:
				rs.Wrote(i, i+1) // a missing row stays missing
				continue
			}
		}
		if !b.Isolate {
			if err := p.exec(ctx, tx); err != nil {
				return connector.Result{}, fmt.Errorf("apply batch of stream %s: %s %s key %v: %w", b.Stream, opName(w.Op), w.Table, w.Key, err)
			}
			rs.Wrote(i, i+1)
			continue
		}
		if err := execIsolated(ctx, tx, p); err != nil {
			var fatal *fatalError
			if errors.As(err, &fatal) {
				return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, fatal.err)
			}
			rs.Failed(i)
			res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref,
				Err: fmt.Errorf("%s %s key %v: %w", opName(w.Op), w.Table, w.Key, err)})
			continue
		}
		rs.Wrote(i, i+1)
	}
	if rs != nil {
		if res.Returned, err = rs.Finish(ctx, read); err != nil {
			return connector.Result{}, fmt.Errorf("apply batch of stream %s: %w", b.Stream, err)
		}
	}

	if _, err := tx.ExecContext(ctx, `UPDATE _dw_marker SET active = 0 WHERE id = 1`); err != nil {
		return connector.Result{}, fmt.Errorf("apply batch of stream %s: reset echo marker: %w", b.Stream, err)
	}
	if !b.Position.IsZero() {
		// Invariant: the applied position commits in the same transaction
		// as the writes.
		if _, err := tx.ExecContext(ctx, `INSERT INTO _dw_progress (stream, lsn, sub, token, source) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (stream) DO UPDATE SET lsn = excluded.lsn, sub = excluded.sub, token = excluded.token, source = excluded.source`,
			b.Stream, int64(b.Position.LSN), int64(b.Position.Sub), b.Position.Token, c.boundSource()); err != nil {
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
func execIsolated(ctx context.Context, tx *sql.Tx, p plan) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT dw_write`); err != nil {
		return &fatalError{fmt.Errorf("savepoint: %w", err)}
	}
	werr := p.exec(ctx, tx)
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
	case connector.InsertOnly:
		return "insert into"
	}
	return fmt.Sprintf("op(%d) on", op)
}

// plan is the SQL of one write: first runs; then runs only when first
// touched no row (the insert half of an upsert).
type plan struct {
	first     string
	firstArgs []any
	then      string
	thenArgs  []any
}

func (p plan) exec(ctx context.Context, tx *sql.Tx) error {
	if p.first == "" {
		return nil
	}
	r, err := tx.ExecContext(ctx, p.first, p.firstArgs...)
	if err != nil || p.then == "" {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, p.then, p.thenArgs...)
	return err
}

// planWrite builds the statements of one write.
//
// An upsert is an UPDATE of the given columns and, when no row has the key,
// an INSERT. INSERT ... ON CONFLICT DO UPDATE alone cannot express it: the
// proposed row must satisfy NOT NULL before the conflict is seen, so an
// update of some columns of a row with other NOT NULL columns would fail.
// The writer is the only connection of the engine and holds the write lock
// from BEGIN IMMEDIATE, so nothing can insert the key in between.
func planWrite(ti tableInfo, w connector.Write) (plan, error) {
	if len(w.Key) == 0 {
		return plan{}, fmt.Errorf("%s %s: the write has no key", opName(w.Op), w.Table)
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
	where := func(args []any) (string, []any, error) {
		var conds []string
		for _, k := range keys {
			v, err := stored(k, w.Key[k])
			if err != nil {
				return "", nil, err
			}
			if v == nil {
				conds = append(conds, quote(k)+" IS NULL")
				continue
			}
			conds = append(conds, quote(k)+" = ?")
			args = append(args, v)
		}
		return strings.Join(conds, " AND "), args, nil
	}
	update := func() (string, []any, error) {
		if len(vals) == 0 {
			return "", nil, nil
		}
		set := make([]string, len(vals))
		var args []any
		for i, col := range vals {
			sv, err := stored(col, w.Values[col])
			if err != nil {
				return "", nil, err
			}
			set[i] = quote(col) + " = ?"
			args = append(args, sv)
		}
		cond, args, err := where(args)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("UPDATE %s SET %s WHERE %s", quote(w.Table), strings.Join(set, ", "), cond), args, nil
	}

	switch w.Op {
	case connector.Upsert, connector.InsertOnly:
		cols := append(append([]string{}, keys...), vals...)
		qcols := make([]string, len(cols))
		ph := make([]string, len(cols))
		var args []any
		for i, col := range cols {
			v := w.Key[col]
			if i >= len(keys) {
				v = w.Values[col]
			}
			sv, err := stored(col, v)
			if err != nil {
				return plan{}, err
			}
			args = append(args, sv)
			qcols[i], ph[i] = quote(col), "?"
		}
		insert := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", quote(w.Table), strings.Join(qcols, ", "), strings.Join(ph, ", "))
		if w.Op == connector.InsertOnly {
			// checkExpect found no row with the key.
			return plan{first: insert, firstArgs: args}, nil
		}
		if len(vals) == 0 {
			// Key only: insert with defaults unless the row exists (not
			// ON CONFLICT DO NOTHING, for the NOT NULL reason above).
			cond, args, err := where(args)
			if err != nil {
				return plan{}, err
			}
			return plan{first: fmt.Sprintf("INSERT INTO %s (%s) SELECT %s WHERE NOT EXISTS (SELECT 1 FROM %s WHERE %s)",
				quote(w.Table), strings.Join(qcols, ", "), strings.Join(ph, ", "), quote(w.Table), cond), firstArgs: args}, nil
		}
		q, uargs, err := update()
		if err != nil {
			return plan{}, err
		}
		return plan{first: q, firstArgs: uargs, then: insert, thenArgs: args}, nil
	case connector.UpdateOnly:
		q, args, err := update()
		return plan{first: q, firstArgs: args}, err
	case connector.Delete:
		cond, args, err := where(nil)
		if err != nil {
			return plan{}, err
		}
		return plan{first: fmt.Sprintf("DELETE FROM %s WHERE %s", quote(w.Table), cond), firstArgs: args}, nil
	}
	return plan{}, fmt.Errorf("%s: unknown write op %d", w.Table, w.Op)
}

// outcome is what checkExpect decided for a conditional write.
type outcome uint8

const (
	outcomeWrite     outcome = iota + 1 // run the write
	outcomeSkip                         // missing row, nothing to do, not reported
	outcomeUnmatched                    // the row does not match: report it
)

// checkExpect reads the current row with w.Key inside the apply transaction
// and decides whether the conditional write w (Expect or InsertOnly)
// applies. SQLite needs no row lock: the writer's transaction began
// IMMEDIATE and holds the database's write lock, so the row cannot change
// between this read and the write.
func checkExpect(ctx context.Context, tx *sql.Tx, ti tableInfo, w connector.Write, equal func(have, want any) bool) (outcome, error) {
	cond, args, err := equalClause(ti, w.Key)
	if err != nil {
		return 0, fmt.Errorf("%s %s: key: %w", opName(w.Op), w.Table, err)
	}
	if w.Op == connector.InsertOnly && len(w.Expect) == 0 {
		var one int
		err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT 1 FROM %s WHERE %s LIMIT 1", quote(w.Table), strings.Join(cond, " AND ")), args...).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return outcomeWrite, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%s %s key %v: look up row: %w", opName(w.Op), w.Table, w.Key, err)
		}
		return outcomeUnmatched, nil
	}
	names := sortedNames(w.Expect, nil)
	infos := make([]colInfo, len(names))
	sel := make([]string, len(names))
	for i, n := range names {
		ci, ok := ti.cols[n]
		if !ok {
			return 0, fmt.Errorf("%s %s: expect: no column %q", opName(w.Op), w.Table, n)
		}
		infos[i], sel[i] = ci, quote(n)
	}
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err = tx.QueryRowContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s LIMIT 1",
		strings.Join(sel, ", "), quote(w.Table), strings.Join(cond, " AND ")), args...).Scan(ptrs...)
	if errors.Is(err, sql.ErrNoRows) {
		if w.Op == connector.Upsert || w.Op == connector.InsertOnly {
			return outcomeWrite, nil
		}
		return outcomeSkip, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s key %v: read expected columns: %w", opName(w.Op), w.Table, w.Key, err)
	}
	if w.Op == connector.InsertOnly {
		return outcomeUnmatched, nil
	}
	for i, n := range names {
		// Decoded exactly as Scan decodes, so Equal sees canonical values.
		have, err := fromStored(infos[i], vals[i])
		if err != nil {
			return 0, fmt.Errorf("%s %s key %v: column %s: %w", opName(w.Op), w.Table, w.Key, n, err)
		}
		if !equal(have, w.Expect[n]) {
			return outcomeUnmatched, nil
		}
	}
	return outcomeWrite, nil
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

// AppliedPosition returns the last position Apply recorded for stream.
func (c *Connector) AppliedPosition(ctx context.Context, stream string) (change.Position, error) {
	return c.appliedPosition(ctx, c.reader, stream)
}

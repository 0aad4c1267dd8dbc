package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// upsertRun returns the end of the run of plain upserts that starts at i
// and can be written as multi-row INSERT ... ON DUPLICATE KEY UPDATE
// statements: same table and columns, every NOT NULL column without a
// default named. Runs shorter than minRun are not runs (i+1 is returned).
//
// Runs of InsertOnly writes (rows the initial sync knows are missing) form
// runs too when minRun > 2, written as plain multi-row INSERTs.
func upsertRun(ws []connector.Write, tables map[string]*tableInfo, i, minRun int) int {
	w := ws[i]
	plain := func(w connector.Write) bool {
		return (w.Op == connector.Upsert && !conditional(w)) || (minRun > 2 && w.Op == connector.InsertOnly && len(w.Expect) == 0)
	}
	if !plain(w) || len(w.Key) == 0 || !insertable(tables[w.Table], w) {
		return i + 1
	}
	sig := w.Op.String() + "\x00" + upsertSig(w)
	j := i + 1
	for j < len(ws) && plain(ws[j]) && ws[j].Op.String()+"\x00"+upsertSig(ws[j]) == sig {
		j++
	}
	if j-i < minRun {
		return i + 1
	}
	return j
}

// rowsPerInsert is how many rows shaped like w one multi-row statement
// takes: at most maxRowsPerInsert, and within the protocol's limit of
// 65,535 placeholders.
func rowsPerInsert(w connector.Write) int {
	return max(1, min(maxRowsPerInsert, 60000/max(1, len(w.Key)+len(w.Values))))
}

// bulkIsolated writes a run of upserts of an isolated batch as multi-row
// statements under one savepoint. It reports false, with the savepoint
// rolled back, when a statement fails: the caller then writes the run row
// by row. The error is for failures the transaction cannot survive.
func (c *Connector) bulkIsolated(ctx context.Context, tx *sql.Tx, ti *tableInfo, ws []connector.Write) (bool, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT dw_bulk"); err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	for k := 0; k < len(ws); k += rowsPerInsert(ws[0]) {
		part := ws[k:min(len(ws), k+rowsPerInsert(ws[0]))]
		var err error
		if ws[0].Op == connector.InsertOnly {
			err = c.insertRows(ctx, tx, part, "")
		} else {
			err = c.execWrites(ctx, tx, ti, part)
		}
		if err != nil {
			c.log.Debug("multi-row upsert fell back to single rows", "table", ws[0].Table, "rows", len(ws), "err", err)
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT dw_bulk"); rerr != nil {
				return false, fmt.Errorf("rollback to savepoint: %w", rerr)
			}
			return false, nil
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT dw_bulk"); err != nil {
		return false, fmt.Errorf("release savepoint: %w", err)
	}
	return true, nil
}

// insertRows inserts ws (same table and columns: keys first, then the
// other values, each sorted) in one multi-row INSERT followed by suffix.
// Without a suffix a row whose key exists fails it, and the caller goes
// row by row; upserts pass their ON DUPLICATE KEY UPDATE clause.
func (c *Connector) insertRows(ctx context.Context, tx *sql.Tx, ws []connector.Write, suffix string) error {
	cols := sortedKeys(ws[0].Key)
	for _, n := range sortedKeys(ws[0].Values) {
		if _, isKey := ws[0].Key[n]; !isKey {
			cols = append(cols, n)
		}
	}
	qc := make([]string, len(cols))
	ph := make([]string, len(cols))
	for i, n := range cols {
		qc[i], ph[i] = quote(n), "?"
	}
	tuple := "(" + strings.Join(ph, ", ") + ")"
	tuples := make([]string, len(ws))
	args := make([]any, 0, len(ws)*len(cols))
	for i, w := range ws {
		tuples[i] = tuple
		for _, n := range cols {
			v, ok := w.Key[n]
			if !ok {
				v = w.Values[n]
			}
			a, err := toSQL(v)
			if err != nil {
				return fmt.Errorf("column %s: %w", n, err)
			}
			args = append(args, a)
		}
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES %s%s", c.qualified(ws[0].Table), strings.Join(qc, ", "), strings.Join(tuples, ", "), suffix), args...)
	return err
}

// ReadKeys returns the rows of table whose key equals one of keys, in one
// statement: WHERE (k1, k2) IN ((?, ?), ...).
func (c *Connector) ReadKeys(ctx context.Context, table string, keys []change.Row) ([]change.Row, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ti, err := c.info(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	kcols := sortedKeys(keys[0])
	qk := make([]string, len(kcols))
	for i, n := range kcols {
		if _, ok := ti.column(n); !ok {
			return nil, fmt.Errorf("read %s by key: no column %s", table, n)
		}
		qk[i] = quote(n)
	}
	args := make([]any, 0, len(keys)*len(kcols))
	tuples := make([]string, len(keys))
	ph := make([]string, len(kcols))
	for i, key := range keys {
		for j, n := range kcols {
			v, ok := key[n]
			if !ok || v == nil {
				return nil, fmt.Errorf("read %s by key: key %d has no value for %s", table, i, n)
			}
			ph[j] = "?"
			if _, isDec := v.(change.Decimal); isDec {
				ph[j] = "CAST(? AS DECIMAL(65,30))"
			}
			a, err := toSQL(v)
			if err != nil {
				return nil, fmt.Errorf("read %s by key %s: %w", table, n, err)
			}
			args = append(args, a)
		}
		tuples[i] = "(" + strings.Join(ph, ", ") + ")"
	}
	infos := ti.Columns
	sel := make([]string, len(infos))
	for i, ci := range infos {
		sel[i] = quote(ci.Name)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE (%s) IN (%s)", strings.Join(sel, ", "), c.qualified(table), strings.Join(qk, ", "), strings.Join(tuples, ", "))
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		c.forget(table)
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	defer rows.Close()
	out, err := decodeRows(rows, infos)
	if err != nil {
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	return out, nil
}

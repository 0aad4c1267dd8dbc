package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// Scan returns rows ordered by req.OrderBy, strictly after req.After,
// paging with a row-value comparison on the key.
func (c *Connector) Scan(ctx context.Context, req connector.ScanRequest) ([]change.Row, error) {
	ti, err := c.info(ctx, req.Table)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	cols := req.Columns
	if cols == nil {
		for _, ci := range ti.Columns {
			cols = append(cols, ci.Name)
		}
	}
	infos := make([]colInfo, len(cols))
	sel := make([]string, len(cols))
	for i, n := range cols {
		ci, ok := ti.column(n)
		if !ok {
			return nil, fmt.Errorf("scan %s: no column %s", req.Table, n)
		}
		infos[i] = ci
		sel[i] = quote(n)
	}
	if len(req.OrderBy) == 0 {
		return nil, fmt.Errorf("scan %s: no order-by key", req.Table)
	}
	if req.After != nil && len(req.After) != len(req.OrderBy) {
		return nil, fmt.Errorf("scan %s: %d after-values for %d key columns", req.Table, len(req.After), len(req.OrderBy))
	}
	where, args, err := equalClause(ti, req.Equal)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	if req.After != nil {
		cond, a, err := afterClause(req.OrderBy, req.After)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", req.Table, err)
		}
		where = append(where, cond)
		args = append(args, a...)
	}
	order := make([]string, len(req.OrderBy))
	for i, k := range req.OrderBy {
		order[i] = quote(k)
	}
	q := fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), c.qualified(req.Table))
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + strings.Join(order, ", ")
	if req.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", req.Limit)
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		c.forget(req.Table)
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	defer rows.Close()
	out, err := decodeRows(rows, infos)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	return out, nil
}

// decodeRows reads every row of rows, whose columns are infos, into
// canonical values.
func decodeRows(rows *sql.Rows, infos []colInfo) ([]change.Row, error) {
	var out []change.Row
	vals := make([]any, len(infos))
	ptrs := make([]any, len(infos))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(change.Row, len(infos))
		for i, ci := range infos {
			v, err := fromSQL(ci, vals[i])
			if err != nil {
				return nil, err
			}
			r[ci.Name] = v
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Count returns the number of rows matching equal.
func (c *Connector) Count(ctx context.Context, table string, equal change.Row) (int64, error) {
	ti, err := c.describe(ctx, table)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	where, args, err := equalClause(ti, equal)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	q := "SELECT COUNT(*) FROM " + c.qualified(table)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	if err := c.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// equalClause builds "col = ?" terms (IS NULL for nil) in a stable order.
func equalClause(ti *tableInfo, equal change.Row) ([]string, []any, error) {
	names := make([]string, 0, len(equal))
	for n := range equal {
		names = append(names, n)
	}
	sort.Strings(names)
	var where []string
	var args []any
	for _, n := range names {
		if _, ok := ti.column(n); !ok {
			return nil, nil, fmt.Errorf("no column %s", n)
		}
		v := equal[n]
		if v == nil {
			where = append(where, quote(n)+" IS NULL")
			continue
		}
		a, err := toSQL(v)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", n, err)
		}
		if _, ok := v.(change.Decimal); ok {
			// A string compared with a DECIMAL compares as DOUBLE; compare
			// exactly instead.
			where = append(where, quote(n)+" = CAST(? AS DECIMAL(65,30))")
		} else {
			where = append(where, quote(n)+" = ?")
		}
		args = append(args, a)
	}
	return where, args, nil
}

// afterClause is "key strictly after after" with NULLs sorting first, as
// MySQL orders them.
func afterClause(keys []string, after []any) (string, []any, error) {
	hasNull := false
	args := make([]any, len(after))
	for i, v := range after {
		if v == nil {
			hasNull = true
		}
		a, err := toSQL(v)
		if err != nil {
			return "", nil, fmt.Errorf("after value %d: %w", i+1, err)
		}
		args[i] = a
	}
	if !hasNull {
		if len(keys) == 1 {
			return quote(keys[0]) + " > ?", args, nil
		}
		// k1 >= a1 AND (k1 > a1 OR (k1 = a1 AND (k2 > a2 OR ...))): the
		// leading bound gives the optimizer a range on the index, which
		// MariaDB does not derive from a row comparison (k1, k2) > (a1, a2)
		// (it scans and sorts the whole table for each chunk).
		var build func(i int) (string, []any)
		build = func(i int) (string, []any) {
			k := quote(keys[i])
			if i == len(keys)-1 {
				return k + " > ?", []any{args[i]}
			}
			rest, restArgs := build(i + 1)
			return "(" + k + " > ? OR (" + k + " = ? AND " + rest + "))", append([]any{args[i], args[i]}, restArgs...)
		}
		s, a := build(0)
		return quote(keys[0]) + " >= ? AND " + s, append([]any{args[0]}, a...), nil
	}
	// (k1 > a1) OR (k1 <=> a1 AND ((k2 > a2) OR ...)), where "> NULL"
	// means IS NOT NULL.
	var build func(i int) (string, []any)
	build = func(i int) (string, []any) {
		k := quote(keys[i])
		var gt string
		var gtArgs []any
		if after[i] == nil {
			gt = k + " IS NOT NULL"
		} else {
			gt, gtArgs = k+" > ?", []any{args[i]}
		}
		if i == len(keys)-1 {
			return gt, gtArgs
		}
		rest, restArgs := build(i + 1)
		s := "(" + gt + " OR (" + k + " <=> ? AND (" + rest + ")))"
		a := append(append(gtArgs, args[i]), restArgs...)
		return s, a
	}
	s, a := build(0)
	return s, a, nil
}

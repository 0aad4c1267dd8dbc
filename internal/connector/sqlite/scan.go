package sqlite

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// Scan returns rows in req.OrderBy order strictly after req.After.
func (c *Connector) Scan(ctx context.Context, req connector.ScanRequest) ([]change.Row, error) {
	ti, err := c.table(ctx, req.Table)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	cols := req.Columns
	if cols == nil {
		for _, col := range ti.Columns {
			cols = append(cols, col.Name)
		}
	}
	infos := make([]colInfo, len(cols))
	sel := make([]string, len(cols))
	for i, name := range cols {
		ci, ok := ti.cols[name]
		if !ok {
			return nil, fmt.Errorf("scan %s: no column %q", req.Table, name)
		}
		infos[i] = ci
		sel[i] = quote(name)
	}
	if len(req.OrderBy) == 0 {
		return nil, fmt.Errorf("scan %s: no OrderBy key", req.Table)
	}
	if req.After != nil && len(req.After) != len(req.OrderBy) {
		return nil, fmt.Errorf("scan %s: After has %d values for an OrderBy of %d columns", req.Table, len(req.After), len(req.OrderBy))
	}

	var where []string
	var args []any
	if req.After != nil {
		keys := make([]string, len(req.OrderBy))
		ph := make([]string, len(req.OrderBy))
		for i, k := range req.OrderBy {
			ci, ok := ti.cols[k]
			if !ok {
				return nil, fmt.Errorf("scan %s: no key column %q", req.Table, k)
			}
			v, err := toStored(ci.kind, req.After[i])
			if err != nil {
				return nil, fmt.Errorf("scan %s: After %s: %w", req.Table, k, err)
			}
			keys[i], ph[i] = quote(k), "?"
			args = append(args, v)
		}
		where = append(where, fmt.Sprintf("(%s) > (%s)", strings.Join(keys, ", "), strings.Join(ph, ", ")))
	}
	eqSQL, eqArgs, err := equalClause(ti, req.Equal)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	where = append(where, eqSQL...)
	args = append(args, eqArgs...)

	order := make([]string, len(req.OrderBy))
	for i, k := range req.OrderBy {
		if _, ok := ti.cols[k]; !ok {
			return nil, fmt.Errorf("scan %s: no key column %q", req.Table, k)
		}
		order[i] = quote(k)
	}
	q := fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), quote(req.Table))
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + strings.Join(order, ", ")
	if req.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", req.Limit)
	}

	rows, err := c.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	defer rows.Close()
	var out []change.Row
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("scan %s: %w", req.Table, err)
		}
		row := make(change.Row, len(cols))
		for i, name := range cols {
			v, err := fromStored(infos[i], vals[i])
			if err != nil {
				return nil, fmt.Errorf("scan %s: column %s: %w", req.Table, name, err)
			}
			row[name] = v
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	return out, nil
}

// Count returns the number of rows matching equal.
func (c *Connector) Count(ctx context.Context, table string, equal change.Row) (int64, error) {
	ti, err := c.table(ctx, table)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	where, args, err := equalClause(ti, equal)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	q := "SELECT COUNT(*) FROM " + quote(table)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	if err := c.reader.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// equalClause returns "col = ?" (or "col IS NULL") conditions for row, in
// column name order so that the SQL text is stable.
func equalClause(ti tableInfo, row change.Row) ([]string, []any, error) {
	names := make([]string, 0, len(row))
	for n := range row {
		names = append(names, n)
	}
	sort.Strings(names)
	var where []string
	var args []any
	for _, n := range names {
		ci, ok := ti.cols[n]
		if !ok {
			return nil, nil, fmt.Errorf("no column %q", n)
		}
		v, err := toStored(ci.kind, row[n])
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", n, err)
		}
		if v == nil {
			where = append(where, quote(n)+" IS NULL")
			continue
		}
		where = append(where, quote(n)+" = ?")
		args = append(args, v)
	}
	return where, args, nil
}

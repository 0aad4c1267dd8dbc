package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// args collects typed statement parameters.
type args struct {
	ti   *tableInfo
	oids []uint32
	vals []any
	// inline renders values as typed literals instead of parameters, for
	// statements that take none (COPY). err is the first value that
	// could not be rendered.
	inline bool
	err    error
}

// add binds v as a value of column col and returns its placeholder.
func (a *args) add(col string, v any) string {
	if a.inline {
		lit, err := literal(a.ti, col, v)
		if err != nil && a.err == nil {
			a.err = fmt.Errorf("column %s: %w", col, err)
		}
		return lit
	}
	a.oids = append(a.oids, a.ti.oids[col])
	a.vals = append(a.vals, v)
	return fmt.Sprintf("$%d", len(a.vals))
}

// checkColumns reports the first name that is not a column of ti.
func checkColumns(ti *tableInfo, names ...[]string) error {
	for _, ns := range names {
		for _, n := range ns {
			if _, ok := ti.oids[n]; !ok {
				return fmt.Errorf("table %s has no column %q", ti.desc.Name, n)
			}
		}
	}
	return nil
}

func sortedKeys(r change.Row) []string {
	ks := make([]string, 0, len(r))
	for k := range r {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// equalWhere renders "col = $n AND ..." with IS NULL for nil values.
func equalWhere(a *args, eq change.Row) []string {
	var conds []string
	for _, k := range sortedKeys(eq) {
		if eq[k] == nil {
			conds = append(conds, qi(k)+" IS NULL")
		} else {
			conds = append(conds, qi(k)+" = "+a.add(k, eq[k]))
		}
	}
	return conds
}

// afterWhere renders "strictly after" in ORDER BY ... NULLS FIRST order:
// a row value comparison when no bound is NULL, else the expanded
// lexicographic form with NULL as the smallest value.
func afterWhere(a *args, cols []string, after []any) string {
	hasNull := false
	for _, v := range after {
		if v == nil {
			hasNull = true
		}
	}
	if !hasNull {
		ph := make([]string, len(after))
		qc := make([]string, len(after))
		for i, v := range after {
			qc[i] = qi(cols[i])
			ph[i] = a.add(cols[i], v)
		}
		return "(" + strings.Join(qc, ", ") + ") > (" + strings.Join(ph, ", ") + ")"
	}
	var ors []string
	for i := range after {
		var ands []string
		for j := 0; j < i; j++ {
			if after[j] == nil {
				ands = append(ands, qi(cols[j])+" IS NULL")
			} else {
				ands = append(ands, qi(cols[j])+" = "+a.add(cols[j], after[j]))
			}
		}
		if after[i] == nil {
			ands = append(ands, qi(cols[i])+" IS NOT NULL")
		} else {
			ands = append(ands, qi(cols[i])+" > "+a.add(cols[i], after[i]))
		}
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// Scan returns rows in OrderBy order strictly after req.After.
func (c *Connector) Scan(ctx context.Context, req connector.ScanRequest) ([]change.Row, error) {
	ti, err := c.info(ctx, req.Table)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	if len(req.OrderBy) == 0 {
		return nil, fmt.Errorf("scan %s: OrderBy is empty; pass a unique key", req.Table)
	}
	if req.After != nil && len(req.After) != len(req.OrderBy) {
		return nil, fmt.Errorf("scan %s: After has %d values for %d OrderBy columns", req.Table, len(req.After), len(req.OrderBy))
	}
	if err := checkColumns(ti, req.Columns, req.OrderBy, sortedKeys(req.Equal)); err != nil {
		c.forget(req.Table)
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	a := &args{ti: ti}
	q, err := selectSQL(ti, a, req, req.Columns)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	var res result
	err = c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err = query(ctx, pc, q, a.oids, a.vals)
		return err
	})
	if err != nil {
		c.forget(req.Table)
		return nil, fmt.Errorf("scan %s: %w", req.Table, err)
	}
	return res.named(), nil
}

// selectSQL renders the query of a scan request: cols (nil: every column)
// of the rows matching req.Equal, after req.After, in req.OrderBy order.
func selectSQL(ti *tableInfo, a *args, req connector.ScanRequest, cols []string) (string, error) {
	sel := "*"
	if cols != nil {
		qc := make([]string, len(cols))
		for i, n := range cols {
			qc[i] = qi(n)
		}
		sel = strings.Join(qc, ", ")
	}
	conds := equalWhere(a, req.Equal)
	if req.After != nil {
		conds = append(conds, afterWhere(a, req.OrderBy, req.After))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s", sel, ti.qname)
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	order := make([]string, len(req.OrderBy))
	for i, n := range req.OrderBy {
		// NULLS FIRST only where a NULL can be: a default (NULLS LAST)
		// btree index cannot serve it, and each chunk would sort the
		// whole table.
		order[i] = qi(n) + " ASC"
		if c, ok := ti.desc.Column(n); !ok || c.Nullable {
			order[i] += " NULLS FIRST"
		}
	}
	b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	if req.Limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", req.Limit)
	}
	return b.String(), nil
}

// Count returns the number of rows matching equal.
func (c *Connector) Count(ctx context.Context, table string, equal change.Row) (int64, error) {
	ti, err := c.info(ctx, table)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	if err := checkColumns(ti, sortedKeys(equal)); err != nil {
		c.forget(table)
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	a := &args{ti: ti}
	q := "SELECT count(*) FROM " + ti.qname
	if conds := equalWhere(a, equal); len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	var res result
	err = c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err = query(ctx, pc, q, a.oids, a.vals)
		return err
	})
	if err != nil {
		c.forget(table)
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return res.rows[0][0].(int64), nil
}

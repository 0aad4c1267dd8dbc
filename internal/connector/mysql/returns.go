package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// maxReadBackKeys bounds the point reads of one read-back statement.
const maxReadBackKeys = 1000

// readBack returns the connector.ReadBack of an apply transaction: one
// statement of point reads by key joined with UNION ALL, each tagged with
// its key's index, so no value is compared in Go and each read uses the
// key's unique index.
func (c *Connector) readBack(tx *sql.Tx, tables map[string]*tableInfo) connector.ReadBack {
	return func(ctx context.Context, table string, cols []string, keys []change.Row) ([]change.Row, error) {
		ti := tables[table]
		if ti == nil {
			var err error
			if ti, err = c.info(ctx, table); err != nil {
				return nil, err
			}
		}
		infos := make([]colInfo, len(cols))
		sel := make([]string, len(cols))
		for i, n := range cols {
			ci, ok := ti.column(n)
			if !ok {
				return nil, problem.New(problem.UnknownColumn, "a write returns column %s, which %s does not have; fix the map or add the column", n, table)
			}
			infos[i], sel[i] = ci, quote(n)
		}
		list := strings.Join(sel, ", ")
		keyCols := sortedKeys(keys[0])
		out := make([]change.Row, len(keys))
		for lo := 0; lo < len(keys); lo += maxReadBackKeys {
			hi := min(len(keys), lo+maxReadBackKeys)
			parts := make([]string, 0, hi-lo)
			args := make([]any, 0, (hi-lo)*(1+len(keyCols)))
			add := func(v any) error {
				a, err := toSQL(v)
				args = append(args, a)
				return err
			}
			for i := lo; i < hi; i++ {
				args = append(args, int64(i))
				where, err := keyWhere(keyCols, keys[i], add)
				if err != nil {
					return nil, err
				}
				parts = append(parts, fmt.Sprintf("SELECT ? AS dw_i, %s FROM %s WHERE %s", list, c.qualified(table), where))
			}
			if err := c.readBackRows(ctx, tx, strings.Join(parts, " UNION ALL "), args, infos, out); err != nil {
				return nil, fmt.Errorf("read back %s: %w", table, err)
			}
		}
		return out, nil
	}
}

// readBackRows runs a read-back statement and stores each row, decoded as
// Scan decodes it, at its key's index in out.
func (c *Connector) readBackRows(ctx context.Context, tx *sql.Tx, q string, args []any, infos []colInfo, out []change.Row) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]any, len(infos))
	ptrs := make([]any, len(infos)+1)
	var idx int64
	ptrs[0] = &idx
	for i := range vals {
		ptrs[i+1] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if idx < 0 || int(idx) >= len(out) {
			return fmt.Errorf("unexpected key index %d", idx)
		}
		r := make(change.Row, len(infos))
		for i, ci := range infos {
			v, err := fromSQL(ci, vals[i])
			if err != nil {
				return err
			}
			r[ci.Name] = v
		}
		out[idx] = r
	}
	return rows.Err()
}

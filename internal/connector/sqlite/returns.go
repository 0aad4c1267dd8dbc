package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// maxReadBackKeys bounds the keys of one read-back statement, well within
// SQLite's limit on bound parameters.
const maxReadBackKeys = 1000

// readBack returns the connector.ReadBack of an apply transaction: one
// statement joining the keys, a VALUES list tagged with each key's index,
// to the table, so no value is compared in Go.
func readBack(tx *sql.Tx, tables map[string]tableInfo) connector.ReadBack {
	return func(ctx context.Context, table string, cols []string, keys []change.Row) ([]change.Row, error) {
		ti, ok := tables[table]
		if !ok {
			return nil, fmt.Errorf("table %s was not described", table)
		}
		infos := make([]colInfo, len(cols))
		sel := make([]string, len(cols))
		for i, n := range cols {
			ci, ok := ti.cols[n]
			if !ok {
				return nil, fmt.Errorf("a write returns column %q, which %s does not have; fix the map or add the column", n, table)
			}
			infos[i], sel[i] = ci, "t."+quote(n)
		}
		keyCols := sortedNames(keys[0], nil)
		alias := make([]string, len(keyCols))
		on := make([]string, len(keyCols))
		for i, n := range keyCols {
			if _, ok := ti.cols[n]; !ok {
				return nil, fmt.Errorf("%s has no key column %q", table, n)
			}
			alias[i] = fmt.Sprintf("k%d", i+1)
			on[i] = fmt.Sprintf("t.%s = k.k%d", quote(n), i+1)
		}
		tuple := "(?" + strings.Repeat(", ?", len(keyCols)) + ")"
		out := make([]change.Row, len(keys))
		for lo := 0; lo < len(keys); lo += maxReadBackKeys {
			hi := min(len(keys), lo+maxReadBackKeys)
			tuples := make([]string, 0, hi-lo)
			args := make([]any, 0, (hi-lo)*(1+len(keyCols)))
			for i := lo; i < hi; i++ {
				args = append(args, int64(i))
				for _, n := range keyCols {
					v, err := toStored(ti.cols[n].kind, keys[i][n])
					if err != nil {
						return nil, fmt.Errorf("key column %s: %w", n, err)
					}
					args = append(args, v)
				}
				tuples = append(tuples, tuple)
			}
			q := fmt.Sprintf("WITH k(dw_i, %s) AS (VALUES %s) SELECT k.dw_i, %s FROM k JOIN %s t ON %s",
				strings.Join(alias, ", "), strings.Join(tuples, ", "), strings.Join(sel, ", "), quote(table), strings.Join(on, " AND "))
			if err := readBackRows(ctx, tx, q, args, cols, infos, out); err != nil {
				return nil, fmt.Errorf("read back %s: %w", table, err)
			}
		}
		return out, nil
	}
}

// readBackRows runs a read-back statement and stores each row, decoded as
// Scan decodes it, at its key's index in out.
func readBackRows(ctx context.Context, tx *sql.Tx, q string, args []any, cols []string, infos []colInfo, out []change.Row) error {
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
			v, err := fromStored(ci, vals[i])
			if err != nil {
				return fmt.Errorf("column %s: %w", cols[i], err)
			}
			r[cols[i]] = v
		}
		out[idx] = r
	}
	return rows.Err()
}

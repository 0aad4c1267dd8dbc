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
			if err := connector.ReadBackRows(ctx, tx, q, args, len(infos), func(i int, v any) (string, any, error) {
				dv, err := fromStored(infos[i], v)
				if err != nil {
					return "", nil, fmt.Errorf("column %s: %w", cols[i], err)
				}
				return cols[i], dv, nil
			}, out); err != nil {
				return nil, fmt.Errorf("read back %s: %w", table, err)
			}
		}
		return out, nil
	}
}

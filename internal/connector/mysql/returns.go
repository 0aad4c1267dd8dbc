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

// maxReadBackKeys bounds the keys of one read-back statement.
const maxReadBackKeys = 1000

// readBack returns the connector.ReadBack of an apply transaction: one
// statement joining the keys, a derived table of one-row selects tagged
// with each key's index, to the table through its key's unique index, so
// no value is compared in Go. (MariaDB's table value constructors lose
// the values of bound parameters, so VALUES cannot carry the keys.)
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
			infos[i], sel[i] = ci, "t."+quote(n)
		}
		keyCols := sortedKeys(keys[0])
		alias := make([]string, len(keyCols))
		on := make([]string, len(keyCols))
		for i, n := range keyCols {
			alias[i] = fmt.Sprintf("k%d", i+1)
			on[i] = fmt.Sprintf("t.%s = k.k%d", quote(n), i+1)
		}
		out := make([]change.Row, len(keys))
		for lo := 0; lo < len(keys); lo += maxReadBackKeys {
			hi := min(len(keys), lo+maxReadBackKeys)
			var b strings.Builder
			args := make([]any, 0, (hi-lo)*len(keyCols))
			for i := lo; i < hi; i++ {
				if i > lo {
					b.WriteString(" UNION ALL ")
				}
				// The index is a literal: MariaDB types a parameter in a
				// derived table's select list from its value, but not an
				// integer one reliably in a table value constructor.
				fmt.Fprintf(&b, "SELECT %d AS dw_i", i)
				for j, n := range keyCols {
					v := keys[i][n]
					if v == nil {
						return nil, fmt.Errorf("key column %s is NULL", n)
					}
					ph := "?"
					if _, isDec := v.(change.Decimal); isDec {
						ph = "CAST(? AS DECIMAL(65,30))"
					}
					if i == lo {
						fmt.Fprintf(&b, ", %s AS %s", ph, alias[j])
					} else {
						b.WriteString(", " + ph)
					}
					a, err := toSQL(v)
					if err != nil {
						return nil, fmt.Errorf("key %s: %w", n, err)
					}
					args = append(args, a)
				}
			}
			q := fmt.Sprintf("SELECT k.dw_i, %s FROM (%s) k JOIN %s t ON %s",
				strings.Join(sel, ", "), b.String(), c.qualified(table), strings.Join(on, " AND "))
			if err := connector.ReadBackRows(ctx, tx, q, args, len(infos), func(i int, v any) (string, any, error) {
				dv, err := fromSQL(infos[i], v)
				return infos[i].Name, dv, err
			}, out); err != nil {
				return nil, fmt.Errorf("read back %s: %w", table, err)
			}
		}
		return out, nil
	}
}

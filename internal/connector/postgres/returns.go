package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// readBack returns the connector.ReadBack of an apply transaction on pc:
// one statement per call, joining the keys, unnested from one array
// parameter per key column WITH ORDINALITY, to the table. The ordinal
// says which key a row belongs to, so no value is compared in Go.
func (c *Connector) readBack(pc *pgconn.PgConn) connector.ReadBack {
	return func(ctx context.Context, table string, cols []string, keys []change.Row) ([]change.Row, error) {
		ti, err := c.info(ctx, table)
		if err != nil {
			return nil, err
		}
		keyCols := sortedKeys(keys[0])
		if err := checkColumns(ti, keyCols, cols); err != nil {
			return nil, problem.Wrap(problem.UnknownColumn, err, "a write returns a column %s does not have; fix the map or add the column", table)
		}
		casts, vals, oids, err := keyArrays(ti, keyCols, keys, 1)
		if err != nil {
			return nil, err
		}
		alias := make([]string, len(keyCols))
		on := make([]string, len(keyCols))
		for i, k := range keyCols {
			alias[i] = fmt.Sprintf("k%d", i+1)
			on[i] = fmt.Sprintf("t.%s = k.k%d", qi(k), i+1)
		}
		sel := make([]string, len(cols))
		for i, k := range cols {
			sel[i] = "t." + qi(k)
		}
		q := fmt.Sprintf("SELECT k.dw_ord, %s FROM unnest(%s) WITH ORDINALITY AS k(%s, dw_ord) JOIN %s t ON %s",
			strings.Join(sel, ", "), strings.Join(casts, ", "), strings.Join(alias, ", "), ti.qname, strings.Join(on, " AND "))
		res, err := query(ctx, pc, q, oids, vals)
		if err != nil {
			return nil, err
		}
		out := make([]change.Row, len(keys))
		for _, r := range res.rows {
			ord, ok := r[0].(int64)
			if !ok || ord < 1 || int(ord) > len(keys) {
				return nil, fmt.Errorf("read back %s: unexpected ordinal %v", table, r[0])
			}
			row := make(change.Row, len(cols))
			for j, k := range cols {
				row[k] = r[j+1]
			}
			out[ord-1] = row
		}
		return out, nil
	}
}

package store

import (
	"context"
	"fmt"
)

// ErrorCounts is the number of recorded errors of one map and direction.
type ErrorCounts struct {
	InitialSync int64
	CatchUp     int64
}

// ErrorCountsByDirection returns a map's recorded initial sync and catch-up
// errors per direction ("erp->crm"), for the metrics. Directions without
// errors are absent.
func (s *Store) ErrorCountsByDirection(ctx context.Context, name string) (map[string]ErrorCounts, error) {
	out := map[string]ErrorCounts{}
	for _, q := range []struct {
		table string
		set   func(c *ErrorCounts, n int64)
	}{
		{"init_errors", func(c *ErrorCounts, n int64) { c.InitialSync = n }},
		{"catchup_errors", func(c *ErrorCounts, n int64) { c.CatchUp = n }},
	} {
		rows, err := s.db.QueryContext(ctx, `SELECT direction, count(*) FROM `+q.table+` WHERE map=? GROUP BY direction`, name)
		if err != nil {
			return nil, fmt.Errorf("count errors of map %s: %w", name, err)
		}
		for rows.Next() {
			var dir string
			var n int64
			if err := rows.Scan(&dir, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("count errors of map %s: %w", name, err)
			}
			c := out[dir]
			q.set(&c, n)
			out[dir] = c
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("count errors of map %s: %w", name, err)
		}
	}
	return out, nil
}

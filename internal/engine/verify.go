package engine

import (
	"context"
	"fmt"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
)

// VerifyResult compares the two sides of a map.
type VerifyResult struct {
	Map       string   `json:"map"`
	LeftRows  int      `json:"left_rows"`
	RightRows int      `json:"right_rows"`
	Missing   []string `json:"missing,omitempty"`   // "crm: key [...]": a source row with no counterpart
	Different []string `json:"different,omitempty"` // "key [...] column x: a vs b"
	Equal     bool     `json:"equal"`
}

// Verify reads both sides of a map and reports every row that is missing
// on the other side or differs under the map. Both sides are equal under
// the map when every filtered source row, mapped, has a counterpart with
// the same values.
func (e *Engine) Verify(ctx context.Context, name string) (VerifyResult, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return VerifyResult{}, err
	}
	res := VerifyResult{Map: name}
	if ms.m == nil {
		return res, fmt.Errorf("map %s has validation problems", name)
	}
	m := ms.m
	for _, from := range []mapping.Side{mapping.Left, mapping.Right} {
		if !m.Flows(from) {
			continue
		}
		to := from.Other()
		order := scanOrder(m, from)
		var after []any
		for {
			rows, err := e.sides[from].conn.Scan(ctx, connector.ScanRequest{Table: m.Table(from), OrderBy: order, After: after, Limit: 500})
			if err != nil {
				return res, err
			}
			if len(rows) == 0 {
				break
			}
			for _, row := range rows {
				if from == mapping.Left {
					res.LeftRows++
				} else {
					res.RightRows++
				}
				if ok, err := m.Match(from, row); err != nil || !ok {
					continue
				}
				kv, _ := m.KeyOf(from, row)
				vals, err := e.translateRow(ctx, m, from, row, false)
				if err != nil {
					res.Different = append(res.Different, fmt.Sprintf("%s key %s: %v", e.sideName(from), keyJSON(kv), err))
					continue
				}
				tkey, err := keyRow(m, to, vals)
				if err != nil {
					res.Different = append(res.Different, fmt.Sprintf("%s key %s: %v", e.sideName(from), keyJSON(kv), err))
					continue
				}
				have, err := e.readRow(ctx, to, m.Table(to), tkey)
				if err != nil {
					return res, err
				}
				if have == nil {
					res.Missing = append(res.Missing, fmt.Sprintf("%s key %s has no row on %s", e.sideName(from), keyJSON(kv), e.sideName(to)))
					continue
				}
				for _, col := range mapping.Diff(vals, have) {
					res.Different = append(res.Different, fmt.Sprintf("%s key %s column %s.%s: %s has %v, %s has %v",
						e.sideName(from), keyJSON(kv), m.Table(to), col, e.sideName(from), vals[col], e.sideName(to), have[col]))
				}
			}
			last := rows[len(rows)-1]
			after = make([]any, len(order))
			for i, c := range order {
				after[i] = last[c]
			}
		}
	}
	res.Equal = len(res.Missing) == 0 && len(res.Different) == 0
	return res, nil
}

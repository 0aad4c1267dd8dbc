// Package apply is the stage that writes a planned batch on one side and
// reads rows back by key: a batch is applied whole, and again with each
// write isolated when it fails, so one bad row never blocks the rest; a
// source transaction larger than one target transaction is split into
// parts whose references to earlier parts become the values those parts
// returned. It knows the databases only through the connector seam.
package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
)

// Split cuts writes into parts of at most connector.MaxBatchRows; no
// writes give one empty part (a batch that only records a position).
func Split(ws []connector.Write) [][]connector.Write {
	if len(ws) == 0 {
		return [][]connector.Write{nil}
	}
	var out [][]connector.Write
	for len(ws) > connector.MaxBatchRows {
		out = append(out, ws[:connector.MaxBatchRows])
		ws = ws[connector.MaxBatchRows:]
	}
	return append(out, ws)
}

// Rebase readies the part of a split transaction that starts at write
// offset: references to writes of earlier parts, committed already, become
// the values those writes returned, and the others are renumbered to the
// part's own writes.
func Rebase(part []connector.Write, offset int, returned map[int]change.Row) []connector.Write {
	if offset == 0 {
		return part
	}
	out := make([]connector.Write, len(part))
	for i, w := range part {
		out[i] = w
		out[i].Values = rebaseRow(w.Values, offset, returned)
		out[i].Key = rebaseRow(w.Key, offset, returned)
	}
	return out
}

func rebaseRow(row change.Row, offset int, returned map[int]change.Row) change.Row {
	var out change.Row
	for col, v := range row {
		r, ok := v.(connector.Ref)
		if !ok {
			continue
		}
		if out == nil {
			out = row.Clone()
		}
		if r.Write < offset {
			out[col] = returned[r.Write][r.Column]
		} else {
			out[col] = connector.Ref{Write: r.Write - offset, Column: r.Column}
		}
	}
	if out == nil {
		return row
	}
	return out
}

// Settle replaces the connector.Ref values of row by what the writes
// returned; ok is false when one has no value (its write failed).
func Settle(row change.Row, returned map[int]change.Row) (change.Row, bool) {
	var out change.Row
	for k, v := range row {
		r, isRef := v.(connector.Ref)
		if !isRef {
			continue
		}
		got, ok := returned[r.Write][r.Column]
		if !ok {
			return nil, false
		}
		if out == nil {
			out = row.Clone()
		}
		out[k] = got
	}
	if out == nil {
		return row, true
	}
	return out, true
}

// Batch applies b on conn in one transaction; when that fails it applies
// it again with each write isolated, so the good rows commit and each bad
// one is reported in Result.Failed. An error means the side could not
// take the batch at all (not a row's fault).
func Batch(ctx context.Context, conn connector.Applier, b connector.Batch) (connector.Result, error) {
	if len(b.Writes) == 0 && b.Position.IsZero() {
		return connector.Result{}, nil
	}
	b.Equal = mapping.Equal
	res, err := conn.Apply(ctx, b)
	if err == nil {
		return res, nil
	}
	b.Isolate = true
	return conn.Apply(ctx, b)
}

// ReadRow reads the row of table whose columns equal key, or nil.
func ReadRow(ctx context.Context, conn connector.Scanner, table string, key change.Row) (change.Row, error) {
	cols := make([]string, 0, len(key))
	for k := range key {
		cols = append(cols, k)
	}
	slices.Sort(cols)
	rows, err := conn.Scan(ctx, connector.ScanRequest{Table: table, Equal: key, OrderBy: cols, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// ReadRows reads the rows of table with the given keys (all with the same
// columns, none NULL) and returns them aligned with keys, nil where no
// row has the key. Connectors that implement KeyReader answer in one
// round trip; rows are matched to keys by value (mapping.Equal), and a
// key whose row the database returned but the values do not match (a
// case-insensitive collation, say) is read again on its own.
func ReadRows(ctx context.Context, conn connector.Scanner, table string, keys []change.Row) ([]change.Row, error) {
	out := make([]change.Row, len(keys))
	kr, bulk := conn.(connector.KeyReader)
	if !bulk || len(keys) < 2 {
		for i, k := range keys {
			row, err := ReadRow(ctx, conn, table, k)
			if err != nil {
				return nil, err
			}
			out[i] = row
		}
		return out, nil
	}
	cols := make([]string, 0, len(keys[0]))
	for k := range keys[0] {
		cols = append(cols, k)
	}
	slices.Sort(cols)
	rows, err := kr.ReadKeys(ctx, table, keys)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	fingerprint := func(r change.Row) (string, bool) {
		var b strings.Builder
		for _, c := range cols {
			fp, ok := mapping.Fingerprint(r[c])
			if !ok {
				return "", false
			}
			b.WriteString(fp)
			b.WriteByte(0)
		}
		return b.String(), true
	}
	byKey := make(map[string][]change.Row, len(rows))
	strays := 0
	for _, r := range rows {
		fp, ok := fingerprint(r)
		if !ok {
			strays++
			continue
		}
		byKey[fp] = append(byKey[fp], r)
	}
	matched := 0
	var again []int
	for i, k := range keys {
		fp, ok := fingerprint(k)
		if !ok {
			again = append(again, i)
			continue
		}
		for _, r := range byKey[fp] {
			if sameKey(cols, k, r) {
				out[i] = r
				matched++
				break
			}
		}
	}
	if strays > 0 || matched < len(rows) {
		// The database matched rows the values do not: ask per key.
		again = again[:0]
		for i := range keys {
			if out[i] == nil {
				again = append(again, i)
			}
		}
	}
	for _, i := range again {
		row, err := ReadRow(ctx, conn, table, keys[i])
		if err != nil {
			return nil, err
		}
		out[i] = row
	}
	return out, nil
}

func sameKey(cols []string, a, b change.Row) bool {
	for _, c := range cols {
		if !mapping.Equal(a[c], b[c]) {
			return false
		}
	}
	return true
}

package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
)

// Bulk paths. A run of plain upserts (no Expect) of one table with the
// same columns — what the initial sync writes — goes through COPY into a
// session-local staging table and one set-based INSERT ... SELECT ... ON
// CONFLICT merge, instead of one statement per row. The run is tried
// under a savepoint; when the merge fails (a bad row, a NOT NULL column
// the writes leave out, two writes of one key), the run is rolled back to
// the savepoint and written row by row, so each bad row gets its own error
// and the good ones still commit.

// bulkRun returns the end of the run of bulk-writable writes that starts
// at i (i+1 when the write at i is not part of a run worth bulking).
func bulkRun(ws []connector.Write, infos []*tableInfo, i int) int {
	if !bulkable(ws[i]) || infos[i] == nil {
		return i + 1
	}
	j := i + 1
	for j < len(ws) && infos[j] != nil && bulkable(ws[j]) && sameShape(ws[i], ws[j]) {
		j++
	}
	if j-i < connector.MinBulkRun {
		return i + 1
	}
	return j
}

// bulkable reports whether w is a plain upsert, insert or update.
func bulkable(w connector.Write) bool {
	return (w.Op == connector.Upsert || w.Op == connector.InsertOnly || (w.Op == connector.UpdateOnly && len(w.Values) > 0)) &&
		len(w.Expect) == 0 && len(w.Key) > 0
}

// sameShape reports whether two writes have the same op, table, key
// columns and value columns.
func sameShape(a, b connector.Write) bool {
	if a.Op != b.Op || a.Table != b.Table || len(a.Key) != len(b.Key) || len(a.Values) != len(b.Values) {
		return false
	}
	for k := range a.Key {
		if _, ok := b.Key[k]; !ok {
			return false
		}
	}
	for k := range a.Values {
		if _, ok := b.Values[k]; !ok {
			return false
		}
	}
	return true
}

// bulkColumns returns the key columns and all written columns of an
// upsert, keys first.
func bulkColumns(w connector.Write) (keys, cols []string) {
	keys = sortedKeys(w.Key)
	cols = append(cols, keys...)
	for _, k := range sortedKeys(w.Values) {
		if _, isKey := w.Key[k]; !isKey {
			cols = append(cols, k)
		}
	}
	return keys, cols
}

// stagingTable makes sure the session has a staging table shaped like
// the columns cols of ti, and returns its name. Staging tables are
// temporary (they vanish with the session) and emptied at every commit.
func (c *Connector) stagingTable(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, cols []string) (string, error) {
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = qi(k)
	}
	sum := sha256.Sum256([]byte(ti.qname + "\x00" + strings.Join(cols, "\x00")))
	name := "dw_stage_" + hex.EncodeToString(sum[:8])
	if c.staged[name] {
		return name, nil
	}
	q := fmt.Sprintf("CREATE TEMP TABLE IF NOT EXISTS %s ON COMMIT DELETE ROWS AS SELECT %s FROM %s WITH NO DATA",
		name, strings.Join(qc, ", "), ti.qname)
	if err := exec(ctx, pc, q); err != nil {
		return "", err
	}
	if c.staged == nil {
		c.staged = map[string]bool{}
	}
	c.staged[name] = true
	return name, nil
}

// bulkWrite writes ws (a run of same-shaped plain upserts or inserts) in
// bulk: upserts through COPY into a staging table and one merge, inserts
// of rows known to be missing with one COPY into the table itself. It runs
// under a savepoint; on failure (for inserts, also a row that exists
// after all) it rolls back to it and returns the error, leaving the
// transaction usable.
func (c *Connector) bulkWrite(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, ws []connector.Write) error {
	if err := exec(ctx, pc, "SAVEPOINT dw_bulk"); err != nil {
		return err
	}
	var err error
	switch ws[0].Op {
	case connector.InsertOnly:
		err = c.bulkInsertTx(ctx, pc, ti, ws)
	case connector.UpdateOnly:
		err = c.bulkUpdateTx(ctx, pc, ti, ws)
	default:
		err = c.bulkUpsertTx(ctx, pc, ti, ws)
	}
	if err != nil {
		// A staging table created under the savepoint is gone with it.
		c.staged = nil
		if pc.IsClosed() {
			return err
		}
		if rbErr := exec(ctx, pc, "ROLLBACK TO SAVEPOINT dw_bulk"); rbErr != nil {
			return rbErr
		}
		return err
	}
	return exec(ctx, pc, "RELEASE SAVEPOINT dw_bulk")
}

func (c *Connector) bulkUpsertTx(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, ws []connector.Write) error {
	keys, cols, stage, err := c.stage(ctx, pc, ti, ws)
	if err != nil {
		return err
	}
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = qi(k)
	}
	qk := make([]string, len(keys))
	for i, k := range keys {
		qk[i] = qi(k)
	}
	action := "DO NOTHING"
	if len(cols) > len(keys) {
		set := make([]string, 0, len(cols)-len(keys))
		for _, k := range cols[len(keys):] {
			set = append(set, qi(k)+" = EXCLUDED."+qi(k))
		}
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	list := strings.Join(qc, ", ")
	return exec(ctx, pc, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ON CONFLICT (%s) %s",
		ti.qname, list, list, stage, strings.Join(qk, ", "), action))
}

// bulkUpdateTx updates the rows of ws that exist, through COPY into a
// staging table and one UPDATE ... FROM; a missing row is left missing,
// as UpdateOnly does.
func (c *Connector) bulkUpdateTx(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, ws []connector.Write) error {
	// UPDATE ... FROM takes an arbitrary one of several staged rows for the
	// same key, where the writes must land in order: a run that updates a
	// row twice is written write by write instead.
	seen := make(map[string]bool, len(ws))
	for _, w := range ws {
		fp := keyPrint(w.Key)
		if seen[fp] {
			return errRunRepeatsKey
		}
		seen[fp] = true
	}
	keys, cols, stage, err := c.stage(ctx, pc, ti, ws)
	if err != nil {
		return err
	}
	set := make([]string, 0, len(cols)-len(keys))
	for _, k := range cols[len(keys):] {
		set = append(set, qi(k)+" = s."+qi(k))
	}
	on := make([]string, len(keys))
	for i, k := range keys {
		on[i] = "t." + qi(k) + " = s." + qi(k)
	}
	return exec(ctx, pc, fmt.Sprintf("UPDATE %s AS t SET %s FROM %s AS s WHERE %s",
		ti.qname, strings.Join(set, ", "), stage, strings.Join(on, " AND ")))
}

// errRunRepeatsKey ends a bulk update run that writes one row twice; the
// run is then written write by write, in order.
var errRunRepeatsKey = errors.New("a bulk update run writes the same row twice")

// keyPrint renders a write's key for comparing keys within a run.
func keyPrint(key change.Row) string {
	var b strings.Builder
	for _, k := range sortedKeys(key) {
		b.WriteString(k)
		b.WriteByte(0)
		fmt.Fprintf(&b, "%T:%v", key[k], key[k])
		b.WriteByte(0)
	}
	return b.String()
}

// stage copies the keys and values of ws (same shape) into the session's
// staging table for their columns, emptied first, and returns the key
// columns, every column and the staging table's name.
func (c *Connector) stage(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, ws []connector.Write) (keys, cols []string, stage string, err error) {
	keys, cols = bulkColumns(ws[0])
	stage, err = c.stagingTable(ctx, pc, ti, cols)
	if err != nil {
		return nil, nil, "", err
	}
	// Staging tables are empty at the start of a transaction (ON COMMIT
	// DELETE ROWS); one used earlier in this transaction is emptied.
	if c.txStaged[stage] {
		if err := exec(ctx, pc, "TRUNCATE "+stage); err != nil {
			return nil, nil, "", err
		}
	}
	if c.txStaged == nil {
		c.txStaged = map[string]bool{}
	}
	c.txStaged[stage] = true
	buf, err := copyRows(ws, cols)
	if err != nil {
		return nil, nil, "", err
	}
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = qi(k)
	}
	if _, err := pc.CopyFrom(ctx, buf, fmt.Sprintf("COPY %s (%s) FROM STDIN", stage, strings.Join(qc, ", "))); err != nil {
		return nil, nil, "", err
	}
	return keys, cols, stage, nil
}

// bulkInsertTx copies ws straight into the table.
func (c *Connector) bulkInsertTx(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, ws []connector.Write) error {
	_, cols := bulkColumns(ws[0])
	buf, err := copyRows(ws, cols)
	if err != nil {
		return err
	}
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = qi(k)
	}
	_, err = pc.CopyFrom(ctx, buf, fmt.Sprintf("COPY %s (%s) FROM STDIN", ti.qname, strings.Join(qc, ", ")))
	return err
}

// copyRows renders the writes' keys and values in COPY text format.
func copyRows(ws []connector.Write, cols []string) (*bytes.Reader, error) {
	var buf []byte
	for _, w := range ws {
		for i, k := range cols {
			if i > 0 {
				buf = append(buf, '\t')
			}
			v, isKey := w.Key[k]
			if !isKey {
				v = w.Values[k]
			}
			var err error
			if buf, err = appendCopyText(buf, v); err != nil {
				return nil, fmt.Errorf("write ref %d column %s: %w", w.Ref, k, err)
			}
		}
		buf = append(buf, '\n')
	}
	return bytes.NewReader(buf), nil
}

// appendArrayElem appends b as a double-quoted element of an array literal.
func appendArrayElem(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, ch := range b {
		if ch == '"' || ch == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, ch)
	}
	return append(dst, '"')
}

// appendCopyText appends v in COPY's text format: the value's text form,
// escaped; NULL is \N.
func appendCopyText(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, '\\', 'N'), nil
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return dst, fmt.Errorf("encode text: PostgreSQL text cannot hold a NUL character")
		}
		return pgrepl.AppendCopyText(dst, x), nil
	case change.Decimal:
		return append(dst, x...), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	}
	b, err := pgrepl.EncodeText(v)
	if err != nil {
		return dst, err
	}
	return pgrepl.AppendCopyText(dst, b), nil
}

// keyArrays renders keys as one text[] parameter per key column, numbered
// from $first, and returns each parameter cast to an array of its
// column's type, for unnest: one short statement whatever the number of
// keys.
func keyArrays(ti *tableInfo, cols []string, keys []change.Row, first int) (casts []string, vals []any, oids []uint32, err error) {
	casts = make([]string, len(cols))
	vals = make([]any, len(cols))
	oids = make([]uint32, len(cols))
	for j, k := range cols {
		arr := []byte{'{'}
		for i, key := range keys {
			v, ok := key[k]
			if !ok || v == nil {
				return nil, nil, nil, fmt.Errorf("key %d has no value for %s", i, k)
			}
			b, err := pgrepl.EncodeText(v)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("key %s: %w", k, err)
			}
			if i > 0 {
				arr = append(arr, ',')
			}
			arr = appendArrayElem(arr, b)
		}
		col, _ := ti.desc.Column(k)
		casts[j] = fmt.Sprintf("$%d::text[]::%s[]", first+j, col.Type)
		vals[j], oids[j] = string(append(arr, '}')), 1009 // text[]
	}
	return casts, vals, oids, nil
}

// ReadKeys returns the rows of table whose key equals one of keys, in one
// statement: WHERE (k1, k2) IN (($1, $2), ...).
func (c *Connector) ReadKeys(ctx context.Context, table string, keys []change.Row) ([]change.Row, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ti, err := c.info(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	cols := sortedKeys(keys[0])
	if err := checkColumns(ti, cols); err != nil {
		c.forget(table)
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = qi(k)
	}
	casts, vals, oids, err := keyArrays(ti, cols, keys, 1)
	if err != nil {
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	q := fmt.Sprintf("SELECT t.* FROM %s t WHERE (%s) IN (SELECT * FROM unnest(%s))", ti.qname, "t."+strings.Join(qc, ", t."), strings.Join(casts, ", "))
	var res result
	err = c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err = query(ctx, pc, q, oids, vals)
		return err
	})
	if err != nil {
		c.forget(table)
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	return res.named(), nil
}

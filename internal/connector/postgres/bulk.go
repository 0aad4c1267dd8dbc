package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// minBulkRun is the shortest run of upserts worth a COPY.
const minBulkRun = 16

// bulkSig is the shape of a plain upsert: table, key and value columns.
func bulkSig(w connector.Write) string {
	if w.Op != connector.Upsert || len(w.Expect) > 0 || len(w.Key) == 0 {
		return ""
	}
	return w.Table + "\x00" + strings.Join(sortedKeys(w.Key), ",") + "\x00" + strings.Join(sortedKeys(w.Values), ",")
}

// bulkRun returns the end of the run of bulk-writable upserts that starts
// at i (i+1 when the write at i is not part of a run worth bulking).
func bulkRun(ws []connector.Write, infos []*tableInfo, i int) int {
	sig := bulkSig(ws[i])
	if sig == "" || infos[i] == nil {
		return i + 1
	}
	j := i + 1
	for j < len(ws) && infos[j] != nil && bulkSig(ws[j]) == sig {
		j++
	}
	if j-i < minBulkRun {
		return i + 1
	}
	return j
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

// bulkUpsert writes ws (a run of same-shaped plain upserts) through COPY
// and one merge statement. It runs under a savepoint; on failure it rolls
// back to it and returns the error, leaving the transaction usable.
func (c *Connector) bulkUpsert(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, ws []connector.Write) error {
	if err := exec(ctx, pc, "SAVEPOINT dw_bulk"); err != nil {
		return err
	}
	err := c.bulkUpsertTx(ctx, pc, ti, ws)
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
	keys, cols := bulkColumns(ws[0])
	stage, err := c.stagingTable(ctx, pc, ti, cols)
	if err != nil {
		return err
	}
	// Staging tables are empty at the start of a transaction (ON COMMIT
	// DELETE ROWS); one used earlier in this transaction is emptied.
	if c.txStaged[stage] {
		if err := exec(ctx, pc, "TRUNCATE "+stage); err != nil {
			return err
		}
	}
	if c.txStaged == nil {
		c.txStaged = map[string]bool{}
	}
	c.txStaged[stage] = true
	var buf bytes.Buffer
	for _, w := range ws {
		for i, k := range cols {
			if i > 0 {
				buf.WriteByte('\t')
			}
			v, isKey := w.Key[k]
			if !isKey {
				v = w.Values[k]
			}
			if err := appendCopyText(&buf, v); err != nil {
				return fmt.Errorf("write ref %d column %s: %w", w.Ref, k, err)
			}
		}
		buf.WriteByte('\n')
	}
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = qi(k)
	}
	if _, err := pc.CopyFrom(ctx, &buf, fmt.Sprintf("COPY %s (%s) FROM STDIN", stage, strings.Join(qc, ", "))); err != nil {
		return err
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

// appendCopyText appends v in COPY's text format: the value's text form
// with backslash, tab, newline and carriage return escaped; NULL is \N.
func appendCopyText(buf *bytes.Buffer, v any) error {
	if v == nil {
		buf.WriteString(`\N`)
		return nil
	}
	b, err := pgrepl.EncodeText(v)
	if err != nil {
		return err
	}
	for _, ch := range b {
		switch ch {
		case '\\':
			buf.WriteString(`\\`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		default:
			buf.WriteByte(ch)
		}
	}
	return nil
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
	// One array parameter per key column, unnested into the key tuples:
	// one short statement whatever the number of keys.
	arrays := make([][]byte, len(cols))
	casts := make([]string, len(cols))
	for j, k := range cols {
		arr := []byte{'{'}
		for i, key := range keys {
			v, ok := key[k]
			if !ok || v == nil {
				return nil, fmt.Errorf("read %s by key: key %d has no value for %s", table, i, k)
			}
			b, err := pgrepl.EncodeText(v)
			if err != nil {
				return nil, fmt.Errorf("read %s by key %s: %w", table, k, err)
			}
			if i > 0 {
				arr = append(arr, ',')
			}
			arr = appendArrayElem(arr, b)
		}
		arrays[j] = append(arr, '}')
		col, _ := ti.desc.Column(k)
		casts[j] = fmt.Sprintf("$%d::text[]::%s[]", j+1, col.Type)
	}
	q := fmt.Sprintf("SELECT t.* FROM %s t WHERE (%s) IN (SELECT * FROM unnest(%s))", ti.qname, "t."+strings.Join(qc, ", t."), strings.Join(casts, ", "))
	vals := make([]any, len(arrays))
	oids := make([]uint32, len(arrays))
	for i, a := range arrays {
		vals[i], oids[i] = string(a), 1009 // text[]
	}
	var res result
	err = c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err = query(ctx, pc, q, oids, vals)
		return err
	})
	if err != nil {
		c.forget(table)
		return nil, fmt.Errorf("read %s by key: %w", table, err)
	}
	out := make([]change.Row, len(res.rows))
	for i, r := range res.rows {
		row := make(change.Row, len(r))
		for j, v := range r {
			row[res.cols[j]] = v
		}
		out[i] = row
	}
	return out, nil
}

package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
)

// tableInfo is a described table plus what statements need: the quoted
// name and each column's type OID (so parameters are typed exactly).
type tableInfo struct {
	desc  connector.Table
	qname string
	oids  map[string]uint32
	// base is each column's type OID with domains resolved to their base
	// type, as the server describes result columns.
	base  map[string]uint32
	relid uint32
}

const relationSQL = `SELECT c.oid::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`

const columnsSQL = `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
  a.atttypid::int8, CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END::int8,
  t.typcategory::text, NOT a.attnotnull,
  a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// Unique indexes usable as an ON CONFLICT target: valid, not partial,
// no expressions; INCLUDE columns are not part of the key.
const uniqueSQL = `SELECT i.indexrelid::int8, i.indisprimary, a.attname::text
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
ORDER BY i.indisprimary DESC, i.indexrelid, k.ord`

// Describe reads the table from pg_catalog.
func (c *Connector) Describe(ctx context.Context, table string) (connector.Table, error) {
	ti, err := c.describe(ctx, table)
	if err != nil {
		return connector.Table{}, err
	}
	return ti.desc, nil
}

// info returns the cached description of table, describing it on first use.
func (c *Connector) info(ctx context.Context, table string) (*tableInfo, error) {
	c.tablesMu.Lock()
	ti := c.tables[table]
	c.tablesMu.Unlock()
	if ti != nil {
		return ti, nil
	}
	return c.describe(ctx, table)
}

// forget drops the cached description (after an error that may come
// from a changed table).
func (c *Connector) forget(table string) {
	c.tablesMu.Lock()
	delete(c.tables, table)
	c.tablesMu.Unlock()
}

func (c *Connector) describe(ctx context.Context, table string) (*tableInfo, error) {
	var ti *tableInfo
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		var err error
		ti, err = describeOn(ctx, pc, table)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.tablesMu.Lock()
	c.tables[table] = ti
	c.tablesMu.Unlock()
	return ti, nil
}

func describeOn(ctx context.Context, pc *pgconn.PgConn, table string) (*tableInfo, error) {
	schema, name := splitName(table)
	res, err := query(ctx, pc, relationSQL, nil, []any{schema, name})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	if len(res.rows) == 0 {
		return nil, fmt.Errorf("describe %s: %w", table, connector.ErrNoTable)
	}
	relid := res.rows[0][0].(int64)
	ti := &tableInfo{
		desc:  connector.Table{Name: table},
		qname: qi(schema) + "." + qi(name),
		oids:  map[string]uint32{},
		base:  map[string]uint32{},
		relid: uint32(relid),
	}
	cols, err := query(ctx, pc, columnsSQL, []uint32{26}, []any{relid})
	if err != nil {
		return nil, fmt.Errorf("describe %s: columns: %w", table, err)
	}
	for _, r := range cols.rows {
		col := connector.Column{
			Name:       r[0].(string),
			Type:       r[1].(string),
			Kind:       kindOf(uint32(r[3].(int64)), r[4].(string)),
			Nullable:   r[5].(bool),
			HasDefault: r[6].(bool),
		}
		ti.desc.Columns = append(ti.desc.Columns, col)
		ti.oids[col.Name] = uint32(r[2].(int64))
		ti.base[col.Name] = uint32(r[3].(int64))
	}
	idx, err := query(ctx, pc, uniqueSQL, []uint32{26}, []any{relid})
	if err != nil {
		return nil, fmt.Errorf("describe %s: unique indexes: %w", table, err)
	}
	var cur int64 = -1
	for _, r := range idx.rows {
		id, primary, col := r[0].(int64), r[1].(bool), r[2].(string)
		if id != cur {
			ti.desc.Unique = append(ti.desc.Unique, nil)
			cur = id
		}
		last := len(ti.desc.Unique) - 1
		ti.desc.Unique[last] = append(ti.desc.Unique[last], col)
		if primary {
			ti.desc.PrimaryKey = append(ti.desc.PrimaryKey, col)
		}
	}
	return ti, nil
}

// kindOf normalises a type (a domain's base type) to a connector.Kind.
func kindOf(oid uint32, category string) connector.Kind {
	switch oid {
	case pgrepl.OIDInt2, pgrepl.OIDInt4, pgrepl.OIDInt8:
		return connector.KindInt
	case pgrepl.OIDFloat4, pgrepl.OIDFloat8:
		return connector.KindFloat
	case pgrepl.OIDNumeric:
		return connector.KindDecimal
	case pgrepl.OIDText, pgrepl.OIDVarchar, pgrepl.OIDBpchar, pgrepl.OIDName:
		return connector.KindText
	case pgrepl.OIDBool:
		return connector.KindBool
	case pgrepl.OIDBytea:
		return connector.KindBytes
	case pgrepl.OIDTimestamp, pgrepl.OIDTimestamptz:
		return connector.KindTime
	case pgrepl.OIDDate:
		return connector.KindDate
	case pgrepl.OIDJSON, pgrepl.OIDJSONB:
		return connector.KindJSON
	case pgrepl.OIDUUID:
		return connector.KindUUID
	}
	if category == "E" { // enums travel as their label
		return connector.KindText
	}
	return connector.KindOther
}

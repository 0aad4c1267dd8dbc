package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/connector"
)

// colInfo is what the connector knows about a column from
// information_schema; the binlog carries neither names nor signedness nor
// charsets, so capture uses it too.
type colInfo struct {
	Name       string
	DataType   string // lower case: int, varchar, ...
	ColumnType string // full: "int(10) unsigned", "enum('a','b')"
	Nullable   bool
	HasDefault bool
	Charset    string // "" for binary and non-text columns
	MaxLen     int64  // character_maximum_length (bytes for binary types)
	Unsigned   bool
	Labels     []string // enum and set labels in declaration order
	Kind       connector.Kind
}

type tableInfo struct {
	Schema, Name string
	Columns      []colInfo
	PrimaryKey   []string
	Unique       [][]string
}

func (t *tableInfo) column(name string) (colInfo, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return colInfo{}, false
}

// describe reads a table's columns and unique indexes.
func (c *Connector) describe(ctx context.Context, table string) (*tableInfo, error) {
	schema, name := c.splitTable(table)
	rows, err := c.db.QueryContext(ctx, `SELECT column_name, data_type, column_type, is_nullable,
		column_default, extra, character_set_name, character_maximum_length
		FROM information_schema.columns WHERE table_schema = ? AND table_name = ?
		ORDER BY ordinal_position`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	defer rows.Close()
	t := &tableInfo{Schema: schema, Name: name}
	for rows.Next() {
		var ci colInfo
		var nullable, extra string
		var dflt, charset sql.NullString
		var maxLen sql.NullInt64
		if err := rows.Scan(&ci.Name, &ci.DataType, &ci.ColumnType, &nullable, &dflt, &extra, &charset, &maxLen); err != nil {
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		ci.DataType = strings.ToLower(ci.DataType)
		ci.Nullable = nullable == "YES"
		ci.HasDefault = dflt.Valid || ci.Nullable || strings.Contains(strings.ToLower(extra), "auto_increment")
		ci.Charset = strings.ToLower(charset.String)
		if ci.Charset == "binary" {
			ci.Charset = ""
		}
		ci.MaxLen = maxLen.Int64
		ci.Unsigned = strings.Contains(strings.ToLower(ci.ColumnType), "unsigned")
		if ci.DataType == "enum" || ci.DataType == "set" {
			ci.Labels = parseLabels(ci.ColumnType)
		}
		t.Columns = append(t.Columns, ci)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("describe %s.%s: %w", schema, name, connector.ErrNoTable)
	}
	jsonCols := map[string]bool{}
	if c.mariaDB {
		// MariaDB's JSON is LONGTEXT with a json_valid() check named after
		// the column.
		crows, err := c.db.QueryContext(ctx, `SELECT constraint_name, check_clause FROM information_schema.check_constraints
			WHERE constraint_schema = ? AND table_name = ?`, schema, name)
		if err != nil {
			return nil, fmt.Errorf("describe %s: check constraints: %w", table, err)
		}
		for crows.Next() {
			var cname, clause string
			if err := crows.Scan(&cname, &clause); err != nil {
				crows.Close()
				return nil, fmt.Errorf("describe %s: %w", table, err)
			}
			if strings.EqualFold(strings.ReplaceAll(clause, " ", ""), "json_valid("+quote(cname)+")") {
				jsonCols[cname] = true
			}
		}
		crows.Close()
		if err := crows.Err(); err != nil {
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
	}
	for i := range t.Columns {
		t.Columns[i].Kind = kindOf(t.Columns[i], jsonCols[t.Columns[i].Name])
	}
	irows, err := c.db.QueryContext(ctx, `SELECT index_name, column_name FROM information_schema.statistics
		WHERE table_schema = ? AND table_name = ? AND non_unique = 0
		ORDER BY index_name = 'PRIMARY' DESC, index_name, seq_in_index`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("describe %s: indexes: %w", table, err)
	}
	defer irows.Close()
	var last string
	for irows.Next() {
		var idx, col string
		if err := irows.Scan(&idx, &col); err != nil {
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		if idx != last || len(t.Unique) == 0 {
			t.Unique = append(t.Unique, nil)
			last = idx
		}
		t.Unique[len(t.Unique)-1] = append(t.Unique[len(t.Unique)-1], col)
		if idx == "PRIMARY" {
			t.PrimaryKey = append(t.PrimaryKey, col)
		}
	}
	if err := irows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	return t, nil
}

// Describe returns the table's columns and unique indexes.
func (c *Connector) Describe(ctx context.Context, table string) (connector.Table, error) {
	ti, err := c.describe(ctx, table)
	if err != nil {
		return connector.Table{}, err
	}
	out := connector.Table{Name: table, PrimaryKey: ti.PrimaryKey, Unique: ti.Unique}
	for _, ci := range ti.Columns {
		out.Columns = append(out.Columns, connector.Column{
			Name: ci.Name, Type: ci.ColumnType, Kind: ci.Kind, Nullable: ci.Nullable, HasDefault: ci.HasDefault,
		})
	}
	return out, nil
}

// kindOf maps a column type to a connector kind.
func kindOf(ci colInfo, isJSON bool) connector.Kind {
	ct := strings.ToLower(ci.ColumnType)
	switch ci.DataType {
	case "tinyint":
		if strings.HasPrefix(ct, "tinyint(1)") {
			return connector.KindBool
		}
		return connector.KindInt
	case "smallint", "mediumint", "int", "integer", "bigint", "year":
		return connector.KindInt
	case "bit":
		if ct == "bit(1)" {
			return connector.KindBool
		}
		return connector.KindBytes
	case "decimal", "numeric":
		return connector.KindDecimal
	case "float", "double", "real":
		return connector.KindFloat
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		if isJSON {
			return connector.KindJSON
		}
		return connector.KindText
	case "json":
		return connector.KindJSON
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return connector.KindBytes
	case "date":
		return connector.KindDate
	case "datetime", "timestamp":
		return connector.KindTime
	case "uuid":
		return connector.KindUUID
	}
	// time, geometry, inet6, ...: carried as text or bytes opaquely.
	return connector.KindOther
}

// parseLabels reads the labels of "enum('a','b”c')".
func parseLabels(columnType string) []string {
	open := strings.IndexByte(columnType, '(')
	if open < 0 {
		return nil
	}
	s := columnType[open+1:]
	var out []string
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			return out
		}
		s = s[i+1:]
		var b strings.Builder
		for len(s) > 0 {
			if s[0] == '\'' {
				if len(s) > 1 && s[1] == '\'' {
					b.WriteByte('\'')
					s = s[2:]
					continue
				}
				s = s[1:]
				break
			}
			if s[0] == '\\' && len(s) > 1 {
				b.WriteByte(s[1])
				s = s[2:]
				continue
			}
			b.WriteByte(s[0])
			s = s[1:]
		}
		out = append(out, b.String())
	}
}

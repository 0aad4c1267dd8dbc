package mysql

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/connectortest"
)

type harness struct{}

func (harness) Open(t *testing.T) (connector.Connector, *sql.DB) {
	c, app, _ := openTest(t)
	return c, app
}

func (harness) Type(k connector.Kind) string {
	switch k {
	case connector.KindInt:
		return "BIGINT"
	case connector.KindFloat:
		return "DOUBLE"
	case connector.KindDecimal:
		return "DECIMAL(30,4)"
	case connector.KindText:
		return "LONGTEXT CHARACTER SET utf8mb4"
	case connector.KindBool:
		return "BOOLEAN"
	case connector.KindBytes:
		return "LONGBLOB"
	case connector.KindTime:
		return "DATETIME(6)"
	case connector.KindDate:
		return "DATE"
	case connector.KindJSON:
		return "JSON"
	case connector.KindUUID:
		return "UUID" // MariaDB 10.7+; MySQL has no UUID type
	}
	return "LONGTEXT"
}

func (harness) Placeholder(int) string { return "?" }

func (harness) TruncateSQL(table string) string { return "TRUNCATE TABLE " + table }

func (harness) Quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func (harness) UUIDDefault() string { return "(uuid())" }

func TestConformance(t *testing.T) {
	connectortest.Run(t, harness{})
}

package postgres

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/connectortest"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
)

type harness struct{}

func (harness) Open(t *testing.T) (connector.Connector, *sql.DB) {
	env := newEnv(t)
	c := env.open(t)
	return c, env.app
}

func (harness) Type(k connector.Kind) string {
	switch k {
	case connector.KindInt:
		return "bigint"
	case connector.KindFloat:
		return "double precision"
	case connector.KindDecimal:
		return "numeric(30,4)"
	case connector.KindText:
		return "text"
	case connector.KindBool:
		return "boolean"
	case connector.KindBytes:
		return "bytea"
	case connector.KindTime:
		return "timestamp(6)"
	case connector.KindDate:
		return "date"
	case connector.KindJSON:
		return "jsonb"
	case connector.KindUUID:
		return "uuid"
	}
	return "text"
}

func (harness) Placeholder(i int) string { return fmt.Sprintf("$%d", i) }

func (harness) TruncateSQL(table string) string { return "TRUNCATE " + table }

func (harness) Quote(name string) string { return pgrepl.QuoteIdent(name) }

func (harness) UUIDDefault() string { return "gen_random_uuid()" }

func TestConformance(t *testing.T) {
	connectortest.Run(t, harness{})
}

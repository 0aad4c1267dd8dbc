package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/mysql"
	"github.com/dualwrite/dualwrite/internal/connector/postgres"
)

// openServerSide opens the drivers of database servers. The replication
// slot (PostgreSQL) is named after the link and the side, so two links on
// one server never share one.
func openServerSide(ctx context.Context, cfg *config.Config, s config.Side, log *slog.Logger) (connector.Connector, error) {
	switch s.Driver {
	case "postgres":
		slot := "dw_" + strings.ToLower(sanitizeIdent(cfg.Link.Name)) + "_" + strings.ToLower(sanitizeIdent(s.Name))
		return postgres.Open(ctx, s.DSN, postgres.Options{Logger: log, Slot: slot, Publication: slot, Origin: slot})
	case "mysql":
		return mysql.Open(ctx, s.DSN, mysql.Options{Logger: log})
	}
	return nil, fmt.Errorf("driver %q is not known; use sqlite, postgres or mysql", s.Driver)
}

// sanitizeIdent keeps letters, digits and underscores, for names that
// become database identifiers.
func sanitizeIdent(s string) string {
	out := []byte(sanitize(s))
	for i, c := range out {
		if c == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}

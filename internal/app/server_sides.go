package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/mysql"
	"github.com/dualwrite/dualwrite/internal/connector/postgres"
)

// openServerSide opens the drivers of database servers. The replication
// slot (PostgreSQL) is named after the link, the side and the DSN, so two
// links on one server never share one.
func openServerSide(ctx context.Context, cfg *config.Config, s config.Side, log *slog.Logger) (connector.Connector, error) {
	switch s.Driver {
	case "postgres":
		// The DSN's hash keeps two links of the same name on one server
		// (a demo run twice against different databases) apart.
		sum := sha256.Sum256([]byte(s.DSN))
		slot := "dw_" + strings.ToLower(sanitizeIdent(cfg.Link.Name)) + "_" + strings.ToLower(sanitizeIdent(s.Name)) + "_" + hex.EncodeToString(sum[:4])
		if len(slot) > 63 {
			slot = slot[:54] + "_" + hex.EncodeToString(sum[:4])
		}
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

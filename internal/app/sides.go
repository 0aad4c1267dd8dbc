package app

import (
	"context"
	"log/slog"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/sqlite"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// OpenSide opens the connector of one side. A failure is DW1000 with the
// driver's reason.
func OpenSide(ctx context.Context, cfg *config.Config, s config.Side, log *slog.Logger) (connector.Connector, error) {
	log = log.With("side", s.Name)
	var (
		c   connector.Connector
		err error
	)
	switch s.Driver {
	case "sqlite":
		c, err = sqlite.Open(ctx, s.DSN, sqlite.Options{Logger: log, PollInterval: cfg.Engine.PollInterval.D()})
	default:
		c, err = openServerSide(ctx, cfg, s, log)
	}
	if err != nil {
		if problem.CodeOf(err) != "" {
			return nil, err
		}
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot connect to side %s (%s); check link.%s.dsn and that the database is up", s.Name, s.Driver, sideKey(cfg, s))
	}
	return c, nil
}

func sideKey(cfg *config.Config, s config.Side) string {
	if s.Name == cfg.Link.Left.Name {
		return "left"
	}
	return "right"
}

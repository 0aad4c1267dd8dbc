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

// openSideReadOnly opens a side to describe and check it without writing:
// validate must not create a SQLite file for a mistyped path, nor any
// table. The server drivers write only when capture or apply starts.
func openSideReadOnly(ctx context.Context, cfg *config.Config, s config.Side, log *slog.Logger) (connector.Connector, error) {
	if s.Driver != "sqlite" {
		return OpenSide(ctx, cfg, s, log)
	}
	c, err := sqlite.OpenReadOnly(ctx, s.DSN, sqlite.Options{Logger: log.With("side", s.Name)})
	if err != nil {
		if problem.CodeOf(err) != "" {
			return nil, err
		}
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot open side %s (sqlite); check link.%s.dsn", s.Name, sideKey(cfg, s))
	}
	return c, nil
}

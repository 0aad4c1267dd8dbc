package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
)

func openServerSide(ctx context.Context, cfg *config.Config, s config.Side, log *slog.Logger) (connector.Connector, error) {
	return nil, fmt.Errorf("driver %q is not available in this build", s.Driver)
}

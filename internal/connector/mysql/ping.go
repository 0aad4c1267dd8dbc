package mysql

import (
	"context"

	"github.com/dualwrite/dualwrite/internal/connector"
)

var _ connector.Pinger = (*Connector)(nil)

// Ping reports whether the server answers, over a pooled connection.
func (c *Connector) Ping(ctx context.Context) error { return c.db.PingContext(ctx) }

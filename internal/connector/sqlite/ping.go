package sqlite

import (
	"context"

	"github.com/dualwrite/dualwrite/internal/connector"
)

var _ connector.Pinger = (*Connector)(nil)

// Ping reports whether the database file still answers a query.
func (c *Connector) Ping(ctx context.Context) error {
	var one int
	return c.reader.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

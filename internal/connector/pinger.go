package connector

import "context"

// Pinger is an optional capability: Ping reports whether the database
// answers now. The engine's readiness check (/readyz) uses it.
type Pinger interface {
	Ping(ctx context.Context) error
}

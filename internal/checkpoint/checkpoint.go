// Package checkpoint is the last stage of a side's data path: once every
// map's share of a group of source transactions is applied, parked or in
// its durable queue, it records the side's position in the control store
// and acknowledges it to the source, so the source may release its log.
// It also keeps the side's true lag: the age of the oldest captured
// transaction not yet checkpointed.
package checkpoint

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// Store keeps a side's last handled position (internal/store implements
// it).
type Store interface {
	SetSidePosition(ctx context.Context, side string, p change.Position) error
}

// Acker acknowledges positions to the source (a connector.Capturer).
type Acker interface {
	Ack(ctx context.Context, pos change.Position) error
}

// Side checkpoints one side of a link. It is safe for concurrent use: the
// capture loop writes, the views read the lag.
type Side struct {
	name string
	st   Store

	mu sync.Mutex
	// oldest is the commit time of the oldest captured transaction not
	// yet checkpointed; zero when none.
	oldest time.Time
}

// New returns the checkpoint of side name over st.
func New(name string, st Store) *Side { return &Side{name: name, st: st} }

// Captured records transactions taken from capture, not yet handled. A
// transaction without a commit time, or one from a source clock ahead of
// ours, counts from now, so the wait is never hidden.
func (c *Side) Captured(txs []change.Tx, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tx := range txs {
		at := tx.CommitTime
		if at.IsZero() || at.After(now) {
			at = now
		}
		if c.oldest.IsZero() || at.Before(c.oldest) {
			c.oldest = at
		}
	}
}

// Commit records last as the side's position, then acknowledges it to the
// source, then counts everything captured so far as handled. The caller
// calls it only after every map's share of the transactions up to last
// was applied, parked or queued.
func (c *Side) Commit(ctx context.Context, src Acker, last change.Position) error {
	// Invariant: a side's position is recorded and acknowledged only after
	// every map's share of the transactions was applied or is in the
	// durable queue, recorded before it is acknowledged (a crash between
	// the two redelivers, and the target skips what it applied).
	if err := c.st.SetSidePosition(ctx, c.name, last); err != nil {
		return err
	}
	if err := src.Ack(ctx, last); err != nil {
		return fmt.Errorf("acknowledge position %s on %s: %w", last, c.name, err)
	}
	c.mu.Lock()
	c.oldest = time.Time{}
	c.mu.Unlock()
	return nil
}

// Lag is the side's true lag in seconds at now: zero when everything
// captured is checkpointed, however long the source is idle; a stalled
// stream keeps its oldest transaction, so its lag keeps growing.
func (c *Side) Lag(now time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.oldest.IsZero() {
		return 0
	}
	return max(now.Sub(c.oldest).Seconds(), 0)
}

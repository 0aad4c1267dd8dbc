package engine

import (
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// pendingClock measures a side's true lag: the age of the oldest captured
// transaction not yet handled (applied, parked or queued). It is zero when
// everything captured is handled, however long the source is idle; a
// stalled stream keeps its oldest transaction, so its lag keeps growing.
// The capture loop writes it, the views read it.
type pendingClock struct {
	mu     sync.Mutex
	oldest time.Time // commit time of the oldest unhandled transaction; zero when none
}

// captured records transactions taken from capture, not yet handled.
// A transaction without a commit time counts from now.
func (p *pendingClock) captured(txs []change.Tx, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tx := range txs {
		at := tx.CommitTime
		if at.IsZero() || at.After(now) {
			at = now // a source clock ahead of ours must not hide the wait
		}
		if p.oldest.IsZero() || at.Before(p.oldest) {
			p.oldest = at
		}
	}
}

// handled records that everything captured so far is handled.
func (p *pendingClock) handled() {
	p.mu.Lock()
	p.oldest = time.Time{}
	p.mu.Unlock()
}

// age is the lag in seconds at now.
func (p *pendingClock) age(now time.Time) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oldest.IsZero() {
		return 0
	}
	return max(now.Sub(p.oldest).Seconds(), 0)
}

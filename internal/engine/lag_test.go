package engine

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/checkpoint"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/store"
)

// gatedCapture delivers its transactions, then waits; each Ack waits for
// the test to open the gate, so the test sees the side while a captured
// transaction is not yet handled.
type gatedCapture struct {
	backlog
	gate  chan struct{}
	acked chan change.Position
}

func (g *gatedCapture) Ack(ctx context.Context, pos change.Position) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.acked <- pos
	return nil
}

// fakeClock is the engine's injected time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestLagIsTheAgeOfTheOldestUnhandledChange drives the real capture loop
// (pump) with a real control store and an injected clock: while a captured
// transaction waits, the lag is its age and grows with the clock; once it
// is handled, the lag is 0 however long the source then stays idle.
func TestLagIsTheAgeOfTheOldestUnhandledChange(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fakeClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	e := &Engine{cfg: &config.Config{}, store: st, now: clock.now, maps: map[string]*mapState{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.cfg.Engine.GroupTransactions = 10
	s := &sideLoop{idx: mapping.Left, name: "erp", reconf: make(chan chan error), check: checkpoint.New("erp", st)}
	e.sides[mapping.Left] = s
	e.sides[mapping.Right] = &sideLoop{idx: mapping.Right, name: "crm", check: checkpoint.New("crm", st)}

	committed := clock.now().Add(-2 * time.Second)
	capt := &gatedCapture{
		backlog: backlog{txs: []change.Tx{{Position: change.Position{LSN: 7}, CommitTime: committed}}},
		gate:    make(chan struct{}),
		acked:   make(chan change.Position, 1),
	}
	done := make(chan error, 1)
	go func() {
		var waiting []chan error
		done <- e.pump(ctx, s, capt, &waiting)
	}()

	// The transaction is captured and waits for its acknowledgement.
	deadline := time.Now().Add(10 * time.Second)
	for s.check.Lag(clock.now()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the captured transaction never counted as pending")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.lags(ctx)[mapping.Left].Seconds; got != 2 {
		t.Fatalf("lag while the transaction waits = %vs, want 2s (its age)", got)
	}
	clock.advance(time.Minute)
	if got := e.lags(ctx)[mapping.Left].Seconds; got != 62 {
		t.Fatalf("lag of a stalled transaction a minute later = %vs, want 62s: it must keep growing", got)
	}

	close(capt.gate)
	if pos := <-capt.acked; pos.LSN != 7 {
		t.Fatalf("acknowledged %v, want LSN 7", pos)
	}
	deadline = time.Now().Add(10 * time.Second)
	for s.check.Lag(clock.now()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the handled transaction still counts as pending")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A minute of no writes: an idle side reads 0, not the time since its
	// last change.
	clock.advance(time.Minute)
	if got := e.lags(ctx)[mapping.Left].Seconds; got != 0 {
		t.Fatalf("lag after a minute idle = %vs, want 0", got)
	}
	if pos, err := st.SidePosition(ctx, "erp"); err != nil || pos.LSN != 7 {
		t.Fatalf("recorded position %v (%v), want LSN 7", pos, err)
	}
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatalf("pump: %v", err)
	}
}

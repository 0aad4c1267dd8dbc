package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
)

// TestAdvanceIdle pins when capture confirms a position the engine did not
// acknowledge. A server shutting down asks for a reply and waits until its
// logical clients confirm every WAL byte sent; capture must then confirm
// the keepalive's position, or `pg_ctl stop -m fast` never completes while
// capture is connected (TestFaultPostgresRestartUnderLoad in internal/app
// restarts a server so under load).
func TestAdvanceIdle(t *testing.T) {
	t.Parallel()
	const idle = 64 << 20
	for _, tc := range []struct {
		name                     string
		acked, queued, confirmed pgrepl.LSN
		pos                      pgrepl.LSN
		replyRequested           bool
		want                     pgrepl.LSN
	}{
		{name: "small gap, no request: stays", acked: 1000, queued: 1000, confirmed: 1000, pos: 2000, want: 1000},
		{name: "large gap, no request: idle advance", acked: 1000, queued: 1000, confirmed: 1000, pos: 1000 + idle, want: 1000 + idle},
		{name: "small gap, reply requested: confirmed", acked: 1000, queued: 1000, confirmed: 1000, pos: 2000, replyRequested: true, want: 2000},
		{name: "delivered but not acknowledged: stays", acked: 1000, queued: 1500, confirmed: 1000, pos: 2000, replyRequested: true, want: 1000},
		{name: "delivered but not acknowledged, large gap: stays", acked: 1000, queued: 1500, confirmed: 1000, pos: 1000 + 2*idle, want: 1000},
		{name: "never backwards", acked: 1000, queued: 1000, confirmed: 3000, pos: 2000, replyRequested: true, want: 3000},
		{name: "not before the acknowledged position", acked: 5000, queued: 5000, confirmed: 1000, pos: 4000, replyRequested: true, want: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cp := &capturer{idle: idle, queued: tc.queued, confirmed: tc.confirmed}
			cp.acked.Store(uint64(tc.acked))
			cp.advanceIdle(tc.pos, tc.replyRequested)
			if cp.confirmed != tc.want {
				t.Fatalf("confirmed = %v, want %v", cp.confirmed, tc.want)
			}
		})
	}
}

// TestWatchShutdown pins when capture closes its stream for a server that
// is shutting down: only while a delivered transaction waits for its Ack
// (the engine may need this very server to handle it, and the server waits
// for capture before it stops) and the server says it is shutting down.
// The end-to-end case is TestFaultPostgresRestartUnderLoad in internal/app.
func TestWatchShutdown(t *testing.T) {
	t.Parallel()
	type result struct {
		probes    int64
		cancelled error
	}
	// watch runs the watchdog until it has probed the server n times, or
	// for 50 stall periods when n is 0, then stops it.
	watch := func(t *testing.T, acked, delivered uint64, stopping bool, n int64) result {
		t.Helper()
		cp := &capturer{stall: time.Millisecond}
		cp.acked.Store(acked)
		cp.delivered.Store(delivered)
		var probes atomic.Int64
		cp.stopping = func(context.Context) bool {
			probes.Add(1)
			return stopping
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		stop := cp.watchShutdown(ctx, cancel)
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ; i++ {
			if ctx.Err() != nil || (n > 0 && probes.Load() >= n) || (n == 0 && i >= 50) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the watchdog probed %d times, want %d", probes.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		stop()
		var err error
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return result{probes.Load(), err}
	}
	t.Run("nothing pending: never probes", func(t *testing.T) {
		t.Parallel()
		if r := watch(t, 100, 100, true, 0); r.probes != 0 || r.cancelled != nil {
			t.Fatalf("probes %d, cancelled %v", r.probes, r.cancelled)
		}
	})
	t.Run("stalled, server running: stream kept", func(t *testing.T) {
		t.Parallel()
		if r := watch(t, 100, 200, false, 3); r.cancelled != nil {
			t.Fatalf("cancelled %v after %d probes of a running server", r.cancelled, r.probes)
		}
	})
	t.Run("stalled, server shutting down: stream closed", func(t *testing.T) {
		t.Parallel()
		if r := watch(t, 100, 200, true, 1); !errors.Is(r.cancelled, errServerStopping) {
			t.Fatalf("cancelled %v, want errServerStopping", r.cancelled)
		}
	})
}

func TestStalled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		last, acked, delivered uint64
		want                   bool
	}{
		{"nothing delivered past the Ack", 100, 100, 100, false},
		{"delivered, no Ack since the last check", 100, 100, 200, true},
		{"delivered, acknowledged since the last check", 50, 100, 200, false},
		{"everything acknowledged since", 50, 200, 200, false},
	} {
		if got := stalled(tc.last, tc.acked, tc.delivered); got != tc.want {
			t.Errorf("%s: stalled(%d, %d, %d) = %v, want %v", tc.name, tc.last, tc.acked, tc.delivered, got, tc.want)
		}
	}
}

// TestShuttingDownIsFalseForARunningServer: the probe does not mistake a
// running server for one that is stopping.
func TestShuttingDownIsFalseForARunningServer(t *testing.T) {
	env := newEnv(t)
	c := env.open(t)
	if c.shuttingDown(ctxT(t)) {
		t.Fatal("a running server is reported as shutting down")
	}
}

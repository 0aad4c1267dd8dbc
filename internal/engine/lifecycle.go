package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// lifecycle is the one table of the lifecycle: for each of the five
// statuses, the user actions allowed in it and the status each leads to.
// The engine, the API's test fake (internal/api/apitest), the web
// workspace and the docs' examples all read it through Actions and Next.
//
// Initializing and Resuming end by themselves (engine transitions to
// Running); stopping them aborts the initial sync or the catch-up and the
// map returns to Not running. A Paused map cannot stop: its queue holds
// changes nobody has applied yet; run it first.
var lifecycle = map[Status][]edge{
	NotRunning:   {{ActionRun, Initializing}},
	Initializing: {{ActionStop, NotRunning}},
	Running:      {{ActionStop, NotRunning}, {ActionPause, Paused}},
	Paused:       {{ActionRun, Resuming}},
	Resuming:     {{ActionStop, NotRunning}},
}

type edge struct {
	action Action
	to     Status
}

// Statuses lists the five statuses in lifecycle order.
func Statuses() []Status {
	return []Status{NotRunning, Initializing, Running, Paused, Resuming}
}

// Actions returns the actions allowed in a status, in the table's order.
func Actions(s Status) []Action {
	out := []Action{}
	for _, e := range lifecycle[s] {
		out = append(out, e.action)
	}
	return out
}

// Next returns the status action a leads to from status s of map name, or
// a DW2001 error naming the current status and the allowed actions.
func Next(name string, s Status, a Action) (Status, error) {
	i := slices.IndexFunc(lifecycle[s], func(e edge) bool { return e.action == a })
	if i >= 0 {
		return lifecycle[s][i].to, nil
	}
	names := make([]string, 0, len(lifecycle[s]))
	for _, x := range Actions(s) {
		names = append(names, string(x))
	}
	allowedText := "none"
	if len(names) > 0 {
		allowedText = strings.Join(names, ", ")
	}
	return "", problem.New(problem.InvalidAction, "cannot %s map %s: it is %s; allowed actions: %s", a, name, s, allowedText)
}

// ParseStatus maps a persisted status back; unknown text is Not running.
func ParseStatus(s string) Status {
	switch Status(s) {
	case Initializing, Running, Paused, Resuming:
		return Status(s)
	}
	return NotRunning
}

// abortStart takes a map away from the worker: it leaves the worker's
// queue, a retry will not put it back (stopping), and the work in progress
// on it is cancelled and has ended when abortStart returns.
func (e *Engine) abortStart(ctx context.Context, ms *mapState) error {
	e.mu.Lock()
	ms.stopping = true
	e.work = slices.DeleteFunc(e.work, func(n string) bool { return n == ms.name })
	cancel, busy := ms.abort, ms.busy
	e.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	// Invariant: Stop returns only once the worker has let go of the map,
	// so an aborted initial sync or catch-up cannot make it Running.
	select {
	case <-busy:
		return nil
	case <-ctx.Done():
		e.mu.Lock()
		ms.stopping = false
		e.mu.Unlock()
		return fmt.Errorf("stop map %s: wait for its initial sync to end: %w", ms.name, ctx.Err())
	}
}

// startFailed records a failed attempt to take a map to Running and puts
// it back in the worker's queue after a backoff (1s, 2s, 4s, … up to a
// minute), without holding the worker: other maps go on meanwhile.
func (e *Engine) startFailed(ctx context.Context, ms *mapState, failures int, err error) {
	e.log.Error("map start failed", "map", ms.name, "attempt", failures, "err", err)
	msg := err.Error()
	if failures == startFailuresHint {
		msg = fmt.Sprintf("%s (failed %d times in a row; it keeps retrying: fix the cause, or stop the map and run it again with skip initial sync)", msg, failures)
	}
	if failures <= startFailuresHint || failures%startFailuresHint == 0 {
		e.activity(ctx, ms.name, "engine", "error", msg)
	}
	wait := time.Second << min(failures-1, 6)
	wait = min(wait, time.Minute)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		if st := ms.status; !ms.stopping && (st == Initializing || st == Resuming) && !slices.Contains(e.work, ms.name) {
			e.work = append(e.work, ms.name)
		}
		e.mu.Unlock()
		e.signal()
	}()
}

// captureOpenTimeout bounds the wait for a side's capture to (re)open when
// a map starts.
const captureOpenTimeout = 10 * time.Second

// startFailuresHint is the number of failed starts in a row after which
// the activity log suggests skipping the initial sync.
const startFailuresHint = 3

package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Visible stalls and engine stops (docs/adr/20261204-visible-stalls.md).
//
// A side's stream stalls when it cannot progress for a reason that is not
// a row's fault: its capture cannot be opened or is reconnecting, the
// other side cannot be written, the control store fails. Every map whose
// data flows from that side then shows a "stalled" condition, with the
// code and the cause, until the stream moves again. A map the engine
// stopped by itself (a TRUNCATE with on_truncate: stop, a schema change)
// shows a "stopped" condition until it is run again.
//
// The persisted lifecycle status is not touched by a stall: the map is
// still Running (or Paused...) and resumes by itself. The condition is
// shown beside it, never hidden behind it.

// Condition kinds (internal/wire).
const (
	ConditionStalled = wire.ConditionStalled
	ConditionStopped = wire.ConditionStopped
)

// attentionEvery is how often the watcher looks at every map's condition,
// and schemaEvery how often it re-describes the tables of active maps.
const (
	attentionEvery = 250 * time.Millisecond
	schemaEvery    = 5 * time.Second
)

// streamWatch is the engine's view of its streams' health and the queue
// of maps it must stop.
type streamWatch struct {
	sides [2]sideStall

	mu    sync.Mutex
	halts []haltRequest
	wake  chan struct{}
}

// sideStall is the health of one side's stream.
type sideStall struct {
	mu    sync.Mutex
	err   error // seen by the capture loop: open, capture or route failure
	since time.Time
	// capt is the open capturer when it reports stalls of its own
	// (background reconnects); captSince is when it first reported the
	// current one.
	capt      connector.StallReporter
	captSince time.Time
	// schema is the open capturer when it reports table definition
	// changes (schema.go).
	schema connector.SchemaWatcher
	// opening is when the capture loop began opening capture; zero when
	// it is not opening.
	opening time.Time
}

// slowOpen is how long opening capture may take before it shows as a
// stall (a slot still held by a closing session, a server starting up).
const slowOpen = 2 * time.Second

// streamOpening records that side s's capture loop is opening capture.
func (e *Engine) streamOpening(s mapping.Side) {
	st := &e.watch.sides[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.opening.IsZero() {
		st.opening = e.now()
	}
}

// attention is what the engine knows of a map beyond its lifecycle status.
type attention struct {
	// halted is set while the engine is stopping the map: applies drop
	// its changes (it will be stopped or resynced).
	halted atomic.Bool
	// epoch counts the engine's stops of the map; a drain begun in an
	// older epoch ends without making the map Running.
	epoch atomic.Uint64

	mu          sync.Mutex
	stopped     *Condition // why the engine stopped the map; cleared by Run
	startErr    error      // last failure to bring the map up; nil once up
	startSince  time.Time
	shown       *Condition // the condition last written to the activity log
	restored    bool       // stopped was looked up in the activity log
	lastSchema  time.Time  // last periodic schema check (watcher only)
	lastSuspect time.Time  // last schema check after a failed row
	tables      [2]*connector.Table
}

// haltRequest asks the watcher to stop a map, and to run it again with
// initial sync when resync is set.
type haltRequest struct {
	ms     *mapState
	resync bool
	cond   Condition
}

func (w *streamWatch) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// streamStalled records that side s's stream cannot progress because of
// err. It is called by the capture loop at each failure.
func (e *Engine) streamStalled(s mapping.Side, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	st := &e.watch.sides[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil {
		st.since = e.now()
	}
	st.err = err
	st.opening = time.Time{}
}

// streamFlowing records that side s's stream progressed.
func (e *Engine) streamFlowing(s mapping.Side) {
	st := &e.watch.sides[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	st.err = nil
	st.opening = time.Time{}
}

// streamOpened records side s's new capturer: the open succeeded.
func (e *Engine) streamOpened(s mapping.Side, capt connector.Capturer) {
	st := &e.watch.sides[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	st.err = nil
	st.opening = time.Time{}
	st.capt, _ = capt.(connector.StallReporter)
	st.schema, _ = capt.(connector.SchemaWatcher)
	st.captSince = time.Time{}
}

// streamClosed records that side s's capturer was closed, because of err
// (nil: a reconfiguration, or no map uses the side any more).
func (e *Engine) streamClosed(ctx context.Context, s mapping.Side, err error) {
	st := &e.watch.sides[s]
	st.mu.Lock()
	st.capt = nil
	st.schema = nil
	st.mu.Unlock()
	if ctx.Err() == nil {
		e.streamStalled(s, err)
	}
}

// sideCondition returns why side s's stream cannot progress, or nil.
func (e *Engine) sideCondition(s mapping.Side) *Condition {
	st := &e.watch.sides[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		return stallOf(e.sideName(s), st.err, st.since)
	}
	if !st.opening.IsZero() && e.now().Sub(st.opening) >= slowOpen {
		return &Condition{Kind: ConditionStalled, Code: string(problem.StreamStalled), Side: e.sideName(s), Since: st.opening,
			Message: fmt.Sprintf("capture on %s has been opening for %s (the server is starting, or a closing session still holds its slot)", e.sideName(s), e.now().Sub(st.opening).Round(time.Second))}
	}
	if st.capt == nil {
		return nil
	}
	err := st.capt.Stalled()
	if err == nil {
		st.captSince = time.Time{}
		return nil
	}
	if st.captSince.IsZero() {
		st.captSince = e.now()
	}
	return stallOf(e.sideName(s), err, st.captSince)
}

// stallOf builds a stalled condition from its cause.
func stallOf(side string, err error, since time.Time) *Condition {
	code := problem.CodeOf(err)
	if code == "" {
		code = problem.StreamStalled
	}
	return &Condition{Kind: ConditionStalled, Code: string(code), Message: causeText(err), Side: side, Since: since}
}

// causeText is an error's text without a leading code (the condition
// carries it apart).
func causeText(err error) string {
	s := err.Error()
	if c := problem.CodeOf(err); c != "" {
		s = strings.TrimPrefix(strings.TrimPrefix(s, string(c)), " ")
	}
	return s
}

// noteStart records why the init/resume worker could not bring a map
// up (nil: it came up).
func (e *Engine) noteStart(ms *mapState, err error) {
	ms.att.mu.Lock()
	defer ms.att.mu.Unlock()
	if err == nil {
		ms.att.startErr = nil
		return
	}
	if ms.att.startErr == nil {
		ms.att.startSince = e.now()
	}
	ms.att.startErr = err
}

// condition returns what the map's view shows beside its status: why the
// engine stopped it, or why its stream is stalled; nil when neither.
func (e *Engine) condition(ms *mapState) *Condition {
	st := e.statusOf(ms)
	ms.att.mu.Lock()
	stopped, startErr, startSince := ms.att.stopped, ms.att.startErr, ms.att.startSince
	ms.att.mu.Unlock()
	if st == NotRunning {
		if stopped == nil {
			return nil
		}
		c := *stopped
		return &c
	}
	if startErr != nil {
		return stallOf("", startErr, startSince)
	}
	if ms.m == nil {
		return nil
	}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		if !ms.m.Flows(s) {
			continue
		}
		if c := e.sideCondition(s); c != nil {
			return c
		}
	}
	return nil
}

// requestHalt asks the watcher to stop the map (and resync it). The map's
// changes are dropped from now on; it reports whether this call asked.
func (e *Engine) requestHalt(ms *mapState, resync bool, code problem.Code, format string, args ...any) bool {
	if !ms.att.halted.CompareAndSwap(false, true) {
		return false
	}
	cond := Condition{Kind: ConditionStopped, Code: string(code), Message: fmt.Sprintf(format, args...), Since: e.now()}
	e.watch.mu.Lock()
	e.watch.halts = append(e.watch.halts, haltRequest{ms: ms, resync: resync, cond: cond})
	e.watch.mu.Unlock()
	e.watch.signal()
	return true
}

// watchAttention is the goroutine that stops maps on request, writes
// every change of a map's condition to the activity log, and checks the
// tables of active maps for schema changes.
func (e *Engine) watchAttention(ctx context.Context) {
	tick := time.NewTicker(attentionEvery)
	defer tick.Stop()
	for {
		e.watch.mu.Lock()
		halts := e.watch.halts
		e.watch.halts = nil
		e.watch.mu.Unlock()
		for _, h := range halts {
			e.halt(ctx, h)
		}
		altered := e.alteredTables()
		for _, n := range e.order {
			ms := e.maps[n]
			e.restoreStopped(ctx, ms)
			e.reportCondition(ctx, ms)
			if e.statusOf(ms) != NotRunning && (e.now().Sub(ms.att.lastSchema) >= schemaEvery || touches(ms, altered)) {
				ms.att.lastSchema = e.now()
				e.checkSchema(ctx, ms)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.watch.wake:
		}
	}
}

// reportCondition writes a map's condition to the activity log and the
// engine log when it appears, changes or clears.
func (e *Engine) reportCondition(ctx context.Context, ms *mapState) {
	c := e.condition(ms)
	ms.att.mu.Lock()
	prev := ms.att.shown
	same := (c == nil && prev == nil) || (c != nil && prev != nil && c.Kind == prev.Kind && c.Code == prev.Code && c.Side == prev.Side)
	ms.att.shown = c
	ms.att.mu.Unlock()
	if same {
		return
	}
	switch {
	case c != nil && c.Kind == ConditionStalled:
		where := ""
		if c.Side != "" {
			where = " on " + c.Side
		}
		e.log.Warn("map stalled", "map", ms.name, "side", c.Side, "code", c.Code, "cause", c.Message)
		e.activity(ctx, ms.name, "engine", "stalled", fmt.Sprintf("%s stalled%s: %s; it resumes by itself when the cause goes", c.Code, where, c.Message))
	case c == nil && prev != nil && prev.Kind == ConditionStalled:
		e.log.Info("map stall cleared", "map", ms.name, "code", prev.Code)
		e.activity(ctx, ms.name, "engine", "stalled", fmt.Sprintf("stall cleared (%s) after %s", prev.Code, e.now().Sub(prev.Since).Round(time.Second)))
	}
}

// halt stops a map at the engine's request: Not running with the
// condition, its queue dropped, capture of its tables ended; with resync
// it is then run again with initial sync.
func (e *Engine) halt(ctx context.Context, h haltRequest) {
	ms := h.ms
	ms.routeMu.Lock()
	ms.att.epoch.Add(1)
	var err error
	if e.statusOf(ms) != NotRunning {
		err = e.setStatus(ctx, ms, NotRunning, "engine")
	}
	if !h.resync {
		ms.att.mu.Lock()
		c := h.cond
		ms.att.stopped = &c
		ms.att.mu.Unlock()
	}
	ms.routeMu.Unlock()
	if err != nil {
		e.log.Error("stop map failed", "map", ms.name, "err", err)
	}
	verb := "stopped the map"
	if h.resync {
		verb = "resyncs the map (stop, then run with initial sync)"
	}
	e.log.Warn("engine stops map", "map", ms.name, "code", h.cond.Code, "cause", h.cond.Message, "resync", h.resync)
	e.activity(ctx, ms.name, "engine", "attention", fmt.Sprintf("%s %s; the engine %s", h.cond.Code, h.cond.Message, verb))
	if err := e.queue.Purge(ctx, ms.name); err != nil {
		e.log.Warn("purge queue failed", "map", ms.name, "err", err)
	}
	if err := e.store.SetQueueCursor(ctx, ms.name, 0); err != nil {
		e.log.Warn("reset queue cursor failed", "map", ms.name, "err", err)
	}
	ms.att.halted.Store(false)
	if h.resync {
		if err := e.startRun(ctx, ms, RunOptions{}, "engine", true); err != nil {
			c := h.cond
			c.Message = fmt.Sprintf("%s; running it again failed: %v", c.Message, err)
			ms.att.mu.Lock()
			ms.att.stopped = &c
			ms.att.mu.Unlock()
			e.activity(ctx, ms.name, "engine", "error", "resync failed: "+err.Error())
		}
		return
	}
	// Capture stops watching the map's tables in the background: a side
	// loop retrying a stalled stream answers only once it moves, and the
	// watcher must go on meanwhile. The goroutine belongs to the engine.
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
			if err := e.reconfigure(ctx, s); err != nil && ctx.Err() == nil {
				e.log.Warn("capture reconfiguration failed", "side", e.sideName(s), "err", err)
			}
		}
	}()
}

// restoreStopped brings back, once after a restart, the condition of a
// map the engine had stopped: the newest "attention" entry of its
// activity log that no later run cleared.
func (e *Engine) restoreStopped(ctx context.Context, ms *mapState) {
	if ms.att.restored {
		return
	}
	ms.att.restored = true
	if e.statusOf(ms) != NotRunning {
		return
	}
	acts, err := e.store.Activity(ctx, ms.name, 50)
	if err != nil {
		return
	}
	for _, a := range acts { // newest first
		if a.Kind == "run" {
			return
		}
		if a.Kind != "attention" {
			continue
		}
		code, msg, _ := strings.Cut(a.Message, " ")
		msg, _, _ = strings.Cut(msg, "; the engine ")
		ms.att.mu.Lock()
		if ms.att.stopped == nil {
			ms.att.stopped = &Condition{Kind: ConditionStopped, Code: code, Message: msg, Since: a.At}
		}
		ms.att.mu.Unlock()
		return
	}
}

// beforeRun clears the engine's stop condition of a Not running map being
// run, after checking that its tables fit it again (a schema change
// stopped it).
func (e *Engine) beforeRun(ctx context.Context, ms *mapState) error {
	if ms.m == nil {
		return nil
	}
	// This also records the tables as they are now, so that columns added
	// from here on are reported.
	if issue, broken := e.schemaIssue(ctx, ms); broken {
		return problem.New(problem.SchemaChanged, "map %s cannot run: %s; fix the table or the map first", ms.name, issue)
	}
	ms.att.mu.Lock()
	ms.att.stopped = nil
	ms.att.startErr = nil
	ms.att.mu.Unlock()
	return nil
}

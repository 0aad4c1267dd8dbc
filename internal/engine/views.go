package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/store"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Maps returns every map's view, in dependency order.
func (e *Engine) Maps(ctx context.Context) ([]MapView, error) {
	lags := e.lags(ctx)
	states, err := e.store.MapStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MapView, 0, len(e.order))
	for _, n := range e.order {
		v, err := e.view(ctx, e.maps[n], lags, states)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Map returns one map's view.
func (e *Engine) Map(ctx context.Context, name string) (MapView, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return MapView{}, err
	}
	states, err := e.store.MapStates(ctx)
	if err != nil {
		return MapView{}, err
	}
	return e.view(ctx, ms, e.lags(ctx), states)
}

// lags returns each side's lag: Seconds is the engine's own measure, the
// age of the oldest captured change not yet handled (lag.go); the bytes
// behind and the log retained come from the connector, where it reports
// them.
func (e *Engine) lags(ctx context.Context) map[mapping.Side]*SideLag {
	out := map[mapping.Side]*SideLag{}
	for _, s := range e.sides {
		sl := &SideLag{Side: s.name, Seconds: s.check.Lag(e.now())}
		if lr, ok := s.conn.(connector.LagReporter); ok {
			if l, err := lr.Lag(ctx); err == nil {
				sl.Bytes, sl.RetainedLog = l.Bytes, l.RetainedLog
			}
		}
		out[s.idx] = sl
	}
	return out
}

// view builds one map's view; states and lags are read once per request by
// the caller, not once per map.
func (e *Engine) view(ctx context.Context, ms *mapState, lags map[mapping.Side]*SideLag, states map[string]store.MapState) (MapView, error) {
	st := e.statusOf(ms)
	v := MapView{
		Name:          ms.name,
		Left:          ms.cfg.Left,
		Right:         ms.cfg.Right,
		Status:        st,
		Actions:       Actions(st),
		Master:        e.sideName(ms.master),
		DependsOn:     e.deps(ms.name),
		InitRowsDone:  ms.initDone.Load(),
		InitRowsTotal: ms.initTotal.Load(),
		Problems:      ms.problems,
		Applied:       map[string]int64{},
	}
	v.LastSync = states[ms.name].LastSync
	v.Condition = e.condition(ms) // hook (stall.go): stalls and engine stops are shown, never hidden
	e.mu.Lock()
	v.StartFailures, v.LastStartError = ms.startFailures, ms.lastStartErr
	e.mu.Unlock()
	var err error
	if v.InitErrors, v.CatchUpErrors, err = e.store.CountErrors(ctx, ms.name); err != nil {
		return v, err
	}
	if qs, err := e.queue.Stats(ctx, ms.name); err == nil {
		v.QueueDepth = qs.Depth
		v.QueueBytes = qs.Bytes
		if !qs.Oldest.IsZero() && qs.Depth > 0 {
			v.QueueAgeSec = e.now().Sub(qs.Oldest).Seconds()
		}
	}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		v.Applied[e.direction(s)] = ms.applied[s].Load()
		if l := lags[s]; l != nil && st != NotRunning {
			v.Lag = append(v.Lag, *l)
		}
	}
	return v, nil
}

// InitErrors lists a map's initial sync errors.
func (e *Engine) InitErrors(ctx context.Context, name string) ([]RowError, error) {
	if _, err := e.lookupMap(name); err != nil {
		return nil, err
	}
	errs, err := e.store.InitErrors(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]RowError, 0, len(errs))
	for _, r := range errs {
		out = append(out, RowError{ID: r.ID, Map: r.Map, Direction: r.Direction, Key: r.Key, KeyText: wire.KeyText(r.Key), Code: r.Code, Message: r.Message, Time: r.At})
	}
	return out, nil
}

// Activity returns a map's activity log, newest first.
func (e *Engine) Activity(ctx context.Context, name string, limit int) ([]Activity, error) {
	if _, err := e.lookupMap(name); err != nil {
		return nil, err
	}
	acts, err := e.store.Activity(ctx, name, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Activity, 0, len(acts))
	for _, a := range acts {
		out = append(out, Activity{ID: a.ID, Map: a.Map, Time: a.At, Actor: a.Actor, Kind: a.Kind, Message: a.Message})
	}
	return out, nil
}

// Lags returns the capture lag of each side whose connector reports it,
// for the metrics; a side whose report fails is left out.
func (e *Engine) Lags(ctx context.Context) []SideLag {
	lags := e.lags(ctx)
	out := make([]SideLag, 0, len(lags))
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		if l := lags[s]; l != nil {
			out = append(out, *l)
		}
	}
	return out
}

// ErrorCounts returns a map's recorded initial sync and catch-up errors per
// direction ("erp->crm").
func (e *Engine) ErrorCounts(ctx context.Context, name string) (map[string]store.ErrorCounts, error) {
	if _, err := e.lookupMap(name); err != nil {
		return nil, err
	}
	return e.store.ErrorCountsByDirection(ctx, name)
}

// Directions returns the two directions of the link ("erp->crm"), the
// left side's first.
func (e *Engine) Directions() []string {
	return []string{e.direction(mapping.Left), e.direction(mapping.Right)}
}

// SideNames returns the side names, left first, for per-side figures.
func (e *Engine) SideNames() []string {
	return []string{e.sideName(mapping.Left), e.sideName(mapping.Right)}
}

// Ready returns what keeps the engine from doing its work now, one line
// each; none means ready. It is the readiness hook of /readyz:
//   - a side that does not answer (connector.Pinger);
//   - a map that cannot reach Running: its initial sync or catch-up has
//     failed startFailuresHint times in a row.
//
// Detectors of other stalls add their findings here.
func (e *Engine) Ready(ctx context.Context) []string {
	var out []string
	for _, s := range e.sides {
		p, ok := s.conn.(connector.Pinger)
		if !ok {
			continue
		}
		if err := p.Ping(ctx); err != nil {
			out = append(out, fmt.Sprintf("side %s is unreachable: %v", s.name, err))
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.order {
		ms := e.maps[n]
		if ms.startFailures >= startFailuresHint && (ms.status == Initializing || ms.status == Resuming) {
			out = append(out, fmt.Sprintf("map %s is stuck in %s: %d attempts failed, last: %s", n, ms.status, ms.startFailures, ms.lastStartErr))
		}
	}
	return out
}

// Observer is told of what the views do not keep: how long each apply took
// and each conflict the conflict rule resolved. The apply path calls it
// synchronously, so an Observer must be fast and must not block.
type Observer interface {
	// Applied reports one target transaction of map in direction
	// ("erp->crm"): the changes it carried and the time from its start to
	// its commit.
	Applied(mapName, direction string, changes int, took time.Duration)
	// ConflictResolved reports a key changed on both sides, settled by the
	// map's conflict rule in favour of the side named winner.
	ConflictResolved(mapName, direction, winner string)
}

type noObserver struct{}

func (noObserver) Applied(string, string, int, time.Duration) {}
func (noObserver) ConflictResolved(string, string, string)    {}

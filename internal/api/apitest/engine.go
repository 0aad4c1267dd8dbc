// Package apitest holds an in-memory implementation of api.Engine for the
// tests of the API and of its clients (the CLI). It is a test double of the
// engine's data; it touches no database. Its lifecycle is the engine's own
// table (engine.Actions and engine.Next), never a copy, so the actions it
// offers and refuses are the real ones. The end-to-end tests run the API
// over the real engine.
package apitest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/api"
	"github.com/dualwrite/dualwrite/internal/engine"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Call records one action the engine was asked to perform.
type Call struct {
	Method string
	Map    string
	Actor  string
	IDs    []int64
	Opts   wire.RunOptions
}

// Engine is an in-memory engine. Its zero value is not usable; use New.
type Engine struct {
	mu       sync.Mutex
	now      time.Time
	order    []string
	maps     map[string]*wire.MapView
	initErrs map[string][]wire.RowError
	catchUp  map[string][]wire.RowError
	activity map[string][]wire.Activity
	skipInit map[string]bool
	nextAct  int64
	calls    []Call

	// InitStep is how many rows each Map call advances an Initializing map
	// by, so that clients polling for progress see it move.
	InitStep int64
	// FailRetry holds the IDs of errors that fail again when retried.
	FailRetry map[int64]bool
	// Err, when set, is returned by every method.
	Err error
	// Panic, when set, makes every method panic with it.
	Panic any
}

var _ api.Engine = (*Engine)(nil)

// New returns an Engine holding Fixture's maps and errors, with every
// timestamp derived from now.
func New(now time.Time) *Engine {
	e := &Engine{
		now:       now.UTC(),
		maps:      map[string]*wire.MapView{},
		initErrs:  map[string][]wire.RowError{},
		catchUp:   map[string][]wire.RowError{},
		activity:  map[string][]wire.Activity{},
		skipInit:  map[string]bool{},
		InitStep:  400,
		FailRetry: map[int64]bool{},
	}
	e.fixture()
	return e
}

func (e *Engine) fixture() {
	add := func(m wire.MapView) {
		m.Actions = engine.Actions(m.Status)
		e.order = append(e.order, m.Name)
		e.maps[m.Name] = &m
	}
	add(wire.MapView{
		Name: "customers", Left: "erp.customer", Right: "crm.account", Status: wire.Running,
		Master: "left", LastSync: e.now.Add(-3 * time.Second),
		InitRowsDone: 1200, InitRowsTotal: 1200,
		Applied: map[string]int64{"erp->crm": 42, "crm->erp": 7},
		Lag:     []wire.SideLag{{Side: "erp", Bytes: 512, Seconds: 0.2, RetainedLog: 4096}},
	})
	add(wire.MapView{
		Name: "orders", Left: "erp.sales_order", Right: "crm.order", Status: wire.NotRunning,
		Master: "left", DependsOn: []string{"customers", "products"},
		InitRowsTotal: 2000, InitErrors: 7,
	})
	add(wire.MapView{
		Name: "products", Left: "erp.item", Right: "crm.product", Status: wire.Paused,
		Master: "right", LastSync: e.now.Add(-10 * time.Minute),
		InitRowsDone: 80, InitRowsTotal: 80, CatchUpErrors: 2,
		QueueDepth: 1204, QueueBytes: 311000, QueueAgeSec: 192.4,
	})
	add(wire.MapView{
		Name: "invoices", Left: "erp.invoice", Right: "crm.invoice", Status: wire.NotRunning,
		Master: "left", Problems: []string{"DW1003 integration key missing: table crm.invoice has no unique index on (number); add one or choose another key"},
	})
	add(engine.MapView{
		Name: "contacts", Left: "erp.contact", Right: "crm.contact", Status: engine.Running,
		Master: "right", LastSync: e.now.Add(-95 * time.Second),
		InitRowsDone: 310, InitRowsTotal: 310,
		Condition: &engine.Condition{Kind: engine.ConditionStalled, Code: string(problem.ConnectionFailed), Side: "crm",
			Message: "the replication stream from slot dw_demo_crm is down; reconnecting: dial tcp 127.0.0.1:5433: connect: connection refused",
			Since:   e.now.Add(-90 * time.Second)},
	})
	for i := range int64(7) {
		e.initErrs["orders"] = append(e.initErrs["orders"], wire.RowError{
			ID: 100 + i, Map: "orders", Direction: "erp->crm",
			Key:  fmt.Sprintf(`[{"t":"s","v":"usmf"},{"t":"s","v":"SO-%04d"}]`, 10+i),
			Code: string(problem.LookupUnresolved), Message: fmt.Sprintf("customer C%03d has no matching crm.account; run the customers map first", i),
			Time: e.now.Add(-time.Duration(60-i) * time.Second),
		})
	}
	e.catchUp["products"] = []wire.RowError{
		{ID: 201, Map: "products", Direction: "crm->erp", Key: `[{"t":"s","v":"A-1"}]`, Code: string(problem.RowWriteFailed),
			Message: "erp.item rejected the write: value too long for column name (40)", Time: e.now.Add(-5 * time.Minute), Changes: 3},
		{ID: 202, Map: "products", Direction: "erp->crm", Key: `[{"t":"s","v":"B-7"}]`, Code: string(problem.TransformFailed),
			Message: "expression price * 1.2 failed: price is NULL", Time: e.now.Add(-4 * time.Minute), Changes: 1},
	}
	e.log("customers", "engine", "status", "Initializing → Running")
	e.log("customers", "cli", "run", "run requested")
}

// Calls returns the actions performed so far.
func (e *Engine) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

func (e *Engine) log(name, actor, kind, msg string) {
	e.nextAct++
	e.activity[name] = append(e.activity[name], wire.Activity{
		ID: e.nextAct, Map: name, Time: e.now.Add(time.Duration(e.nextAct) * time.Second),
		Actor: actor, Kind: kind, Message: msg,
	})
}

// enter checks the failure knobs and the map's existence; the caller
// holds e.mu.
func (e *Engine) enter(name string) (*wire.MapView, error) {
	if e.Panic != nil {
		panic(e.Panic)
	}
	if e.Err != nil {
		return nil, e.Err
	}
	if name == "" {
		return nil, nil
	}
	m, ok := e.maps[name]
	if !ok {
		return nil, problem.New(problem.MapNotFound, "map %q not found; `dualwrite maps list` shows the maps", name)
	}
	return m, nil
}

func view(m *wire.MapView) wire.MapView {
	v := *m
	v.Actions = slices.Clone(m.Actions)
	return v
}

// Maps implements api.Engine.
func (e *Engine) Maps(ctx context.Context) ([]wire.MapView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(""); err != nil {
		return nil, err
	}
	out := make([]wire.MapView, 0, len(e.order))
	for _, n := range e.order {
		out = append(out, view(e.maps[n]))
	}
	return out, nil
}

// Map implements api.Engine. Each call moves an Initializing map InitStep
// rows on, and a Resuming map to Running.
func (e *Engine) Map(ctx context.Context, name string) (wire.MapView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return wire.MapView{}, err
	}
	v := view(m)
	switch m.Status {
	case wire.Initializing:
		if !e.skipInit[name] {
			m.InitRowsDone = min(m.InitRowsDone+e.InitStep, m.InitRowsTotal)
		}
		if e.skipInit[name] || m.InitRowsDone == m.InitRowsTotal {
			e.setStatus(m, wire.Running)
		}
	case wire.Resuming:
		e.setStatus(m, wire.Running)
	}
	return v, nil
}

func (e *Engine) setStatus(m *wire.MapView, s wire.Status) {
	m.Status = s
	m.Actions = engine.Actions(s)
	e.log(m.Name, "engine", "status", "→ "+string(s))
}

// Run implements api.Engine.
func (e *Engine) Run(ctx context.Context, name string, o wire.RunOptions) (wire.ActionResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return wire.ActionResult{}, err
	}
	e.calls = append(e.calls, Call{Method: "Run", Map: name, Actor: o.Actor, Opts: o})
	if len(m.Problems) > 0 {
		return wire.ActionResult{}, problem.New(problem.MapInvalid, "map %s has %d validation errors; run `dualwrite validate` and fix them", name, len(m.Problems))
	}
	next, err := engine.Next(name, m.Status, wire.ActionRun)
	if err != nil {
		return wire.ActionResult{}, err
	}
	var related []string
	for _, d := range m.DependsOn {
		if dm, ok := e.maps[d]; ok && dm.Status != wire.Running && dm.Status != wire.Initializing && dm.Status != wire.Resuming {
			related = append(related, d)
		}
	}
	res := wire.ActionResult{Map: name, Related: related}
	if o.WithRelated {
		for _, d := range related {
			dm := e.maps[d]
			to, err := engine.Next(d, dm.Status, wire.ActionRun)
			if err != nil {
				return wire.ActionResult{}, err
			}
			// The fake ends a related map's initial sync at once.
			e.setStatus(dm, to)
			e.setStatus(dm, wire.Running)
			res.Acted = append(res.Acted, d)
		}
		res.Acted = append(res.Acted, name)
	}
	if o.Master != "" {
		m.Master = o.Master
	}
	if next == wire.Initializing {
		m.InitRowsDone = 0
		e.skipInit[name] = o.SkipInitialSync || m.InitRowsTotal == 0
	}
	e.log(name, o.Actor, "run", "run requested")
	e.setStatus(m, next)
	res.Status = next
	return res, nil
}

// Pause implements api.Engine.
func (e *Engine) Pause(ctx context.Context, name string, withRelated bool, actor string) (wire.ActionResult, error) {
	return e.transition(name, "Pause", wire.ActionPause, actor)
}

// Stop implements api.Engine.
func (e *Engine) Stop(ctx context.Context, name string, actor string) (wire.ActionResult, error) {
	return e.transition(name, "Stop", wire.ActionStop, actor)
}

func (e *Engine) transition(name, method string, a wire.Action, actor string) (wire.ActionResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return wire.ActionResult{}, err
	}
	e.calls = append(e.calls, Call{Method: method, Map: name, Actor: actor})
	to, err := engine.Next(name, m.Status, a)
	if err != nil {
		return wire.ActionResult{}, err
	}
	e.log(name, actor, "run", string(a)+" requested")
	e.setStatus(m, to)
	return wire.ActionResult{Map: name, Status: to}, nil
}

// InitErrors implements api.Engine.
func (e *Engine) InitErrors(ctx context.Context, name string) ([]wire.RowError, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(name); err != nil {
		return nil, err
	}
	return slices.Clone(e.initErrs[name]), nil
}

// CatchUpErrors implements api.Engine.
func (e *Engine) CatchUpErrors(ctx context.Context, name string) ([]wire.RowError, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(name); err != nil {
		return nil, err
	}
	return slices.Clone(e.catchUp[name]), nil
}

// retryIn retries the selected errors of list (all when ids is empty):
// those in FailRetry stay, the others go.
func (e *Engine) retryIn(list []wire.RowError, ids []int64) ([]wire.RowError, wire.RetryResult) {
	var res wire.RetryResult
	kept := list[:0:0]
	for _, re := range list {
		if len(ids) > 0 && !slices.Contains(ids, re.ID) {
			kept = append(kept, re)
			continue
		}
		res.Retried++
		if e.FailRetry[re.ID] {
			res.Failed++
			kept = append(kept, re)
		} else {
			res.Succeeded++
		}
	}
	return kept, res
}

// Rerun implements api.Engine.
func (e *Engine) Rerun(ctx context.Context, name string, actor string) (wire.RetryResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return wire.RetryResult{}, err
	}
	e.calls = append(e.calls, Call{Method: "Rerun", Map: name, Actor: actor})
	kept, res := e.retryIn(e.initErrs[name], nil)
	e.initErrs[name] = kept
	m.InitErrors = int64(len(kept))
	e.log(name, actor, "run", fmt.Sprintf("rerun of %d errored rows", res.Retried))
	return res, nil
}

// Retry implements api.Engine.
func (e *Engine) Retry(ctx context.Context, name string, ids []int64, actor string) (wire.RetryResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return wire.RetryResult{}, err
	}
	e.calls = append(e.calls, Call{Method: "Retry", Map: name, Actor: actor, IDs: ids})
	kept, res := e.retryIn(e.catchUp[name], ids)
	e.catchUp[name] = kept
	m.CatchUpErrors = int64(len(kept))
	return res, nil
}

// Discard implements api.Engine.
func (e *Engine) Discard(ctx context.Context, name string, ids []int64, actor string) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return 0, err
	}
	e.calls = append(e.calls, Call{Method: "Discard", Map: name, Actor: actor, IDs: ids})
	var kept []wire.RowError
	n := 0
	for _, re := range e.catchUp[name] {
		if len(ids) > 0 && !slices.Contains(ids, re.ID) {
			kept = append(kept, re)
			continue
		}
		n++
	}
	e.catchUp[name] = kept
	m.CatchUpErrors = int64(len(kept))
	return n, nil
}

// Activity implements api.Engine: newest first, at most limit entries.
func (e *Engine) Activity(ctx context.Context, name string, limit int) ([]wire.Activity, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(name); err != nil {
		return nil, err
	}
	acts := slices.Clone(e.activity[name])
	slices.Reverse(acts)
	if limit > 0 && len(acts) > limit {
		acts = acts[:limit]
	}
	return acts, nil
}

// Package apitest holds an in-memory implementation of api.Engine for the
// tests of the API and of its clients (the CLI). It is a test double of the
// engine, with a small lifecycle of its own; it touches no database. The
// end-to-end tests run the API over the real engine.
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
)

// Call records one action the engine was asked to perform.
type Call struct {
	Method string
	Map    string
	Actor  string
	IDs    []int64
	Opts   engine.RunOptions
}

// Engine is an in-memory engine. Its zero value is not usable; use New.
type Engine struct {
	mu       sync.Mutex
	now      time.Time
	order    []string
	maps     map[string]*engine.MapView
	initErrs map[string][]engine.RowError
	catchUp  map[string][]engine.RowError
	activity map[string][]engine.Activity
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
		maps:      map[string]*engine.MapView{},
		initErrs:  map[string][]engine.RowError{},
		catchUp:   map[string][]engine.RowError{},
		activity:  map[string][]engine.Activity{},
		InitStep:  400,
		FailRetry: map[int64]bool{},
	}
	e.fixture()
	return e
}

func (e *Engine) fixture() {
	add := func(m engine.MapView) {
		m.Actions = actionsFor(m.Status)
		e.order = append(e.order, m.Name)
		e.maps[m.Name] = &m
	}
	add(engine.MapView{
		Name: "customers", Left: "erp.customer", Right: "crm.account", Status: engine.Running,
		Master: "left", LastSync: e.now.Add(-3 * time.Second),
		InitRowsDone: 1200, InitRowsTotal: 1200,
		Applied: map[string]int64{"erp->crm": 42, "crm->erp": 7},
		Lag:     []engine.SideLag{{Side: "erp", Bytes: 512, Seconds: 0.2, RetainedLog: 4096}},
	})
	add(engine.MapView{
		Name: "orders", Left: "erp.sales_order", Right: "crm.order", Status: engine.NotRunning,
		Master: "left", DependsOn: []string{"customers", "products"},
		InitRowsTotal: 2000, InitErrors: 7,
	})
	add(engine.MapView{
		Name: "products", Left: "erp.item", Right: "crm.product", Status: engine.Paused,
		Master: "right", LastSync: e.now.Add(-10 * time.Minute),
		InitRowsDone: 80, InitRowsTotal: 80, CatchUpErrors: 2,
		QueueDepth: 1204, QueueBytes: 311000, QueueAgeSec: 192.4,
	})
	add(engine.MapView{
		Name: "invoices", Left: "erp.invoice", Right: "crm.invoice", Status: engine.NotRunning,
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
		e.initErrs["orders"] = append(e.initErrs["orders"], engine.RowError{
			ID: 100 + i, Map: "orders", Direction: "erp->crm",
			Key:  fmt.Sprintf(`{"order_no":"SO-%04d"}`, 10+i),
			Code: string(problem.LookupUnresolved), Message: fmt.Sprintf("customer C%03d has no matching crm.account; run the customers map first", i),
			Time: e.now.Add(-time.Duration(60-i) * time.Second),
		})
	}
	e.catchUp["products"] = []engine.RowError{
		{ID: 201, Map: "products", Direction: "crm->erp", Key: `{"sku":"A-1"}`, Code: string(problem.RowWriteFailed),
			Message: "erp.item rejected the write: value too long for column name (40)", Time: e.now.Add(-5 * time.Minute), Changes: 3},
		{ID: 202, Map: "products", Direction: "erp->crm", Key: `{"sku":"B-7"}`, Code: string(problem.TransformFailed),
			Message: "expression price * 1.2 failed: price is NULL", Time: e.now.Add(-4 * time.Minute), Changes: 1},
	}
	e.log("customers", "engine", "status", "Initializing → Running")
	e.log("customers", "cli", "run", "run requested")
}

// actionsFor is the fake's lifecycle: the actions allowed in each status.
func actionsFor(s engine.Status) []engine.Action {
	switch s {
	case engine.NotRunning:
		return []engine.Action{engine.ActionRun}
	case engine.Initializing, engine.Resuming:
		return []engine.Action{engine.ActionStop}
	case engine.Running:
		return []engine.Action{engine.ActionPause, engine.ActionStop}
	case engine.Paused:
		return []engine.Action{engine.ActionRun, engine.ActionStop}
	}
	return nil
}

// Calls returns the actions performed so far.
func (e *Engine) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

func (e *Engine) log(name, actor, kind, msg string) {
	e.nextAct++
	e.activity[name] = append(e.activity[name], engine.Activity{
		ID: e.nextAct, Map: name, Time: e.now.Add(time.Duration(e.nextAct) * time.Second),
		Actor: actor, Kind: kind, Message: msg,
	})
}

// enter checks the failure knobs and the map's existence; the caller
// holds e.mu.
func (e *Engine) enter(name string) (*engine.MapView, error) {
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

func view(m *engine.MapView) engine.MapView {
	v := *m
	v.Actions = slices.Clone(m.Actions)
	return v
}

// Maps implements api.Engine.
func (e *Engine) Maps(ctx context.Context) ([]engine.MapView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(""); err != nil {
		return nil, err
	}
	out := make([]engine.MapView, 0, len(e.order))
	for _, n := range e.order {
		out = append(out, view(e.maps[n]))
	}
	return out, nil
}

// Map implements api.Engine. Each call moves an Initializing map InitStep
// rows on, and a Resuming map to Running.
func (e *Engine) Map(ctx context.Context, name string) (engine.MapView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return engine.MapView{}, err
	}
	v := view(m)
	switch m.Status {
	case engine.Initializing:
		m.InitRowsDone = min(m.InitRowsDone+e.InitStep, m.InitRowsTotal)
		if m.InitRowsDone == m.InitRowsTotal {
			e.setStatus(m, engine.Running)
		}
	case engine.Resuming:
		e.setStatus(m, engine.Running)
	}
	return v, nil
}

func (e *Engine) setStatus(m *engine.MapView, s engine.Status) {
	m.Status = s
	m.Actions = actionsFor(s)
	e.log(m.Name, "engine", "status", "→ "+string(s))
}

func allowed(m *engine.MapView, a engine.Action) error {
	if slices.Contains(m.Actions, a) {
		return nil
	}
	return problem.New(problem.InvalidAction, "cannot %s map %s while it is %s; allowed: %v", a, m.Name, m.Status, m.Actions)
}

// Run implements api.Engine.
func (e *Engine) Run(ctx context.Context, name string, o engine.RunOptions) (engine.ActionResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return engine.ActionResult{}, err
	}
	e.calls = append(e.calls, Call{Method: "Run", Map: name, Actor: o.Actor, Opts: o})
	if len(m.Problems) > 0 {
		return engine.ActionResult{}, problem.New(problem.MapInvalid, "map %s has %d validation errors; run `dualwrite validate` and fix them", name, len(m.Problems))
	}
	if err := allowed(m, engine.ActionRun); err != nil {
		return engine.ActionResult{}, err
	}
	var related []string
	for _, d := range m.DependsOn {
		if dm, ok := e.maps[d]; ok && dm.Status != engine.Running {
			related = append(related, d)
		}
	}
	res := engine.ActionResult{Map: name, Related: related}
	if o.WithRelated {
		for _, d := range related {
			e.setStatus(e.maps[d], engine.Running)
			res.Acted = append(res.Acted, d)
		}
		res.Acted = append(res.Acted, name)
	}
	if o.Master != "" {
		m.Master = o.Master
	}
	next := engine.Running
	switch {
	case m.Status == engine.Paused:
		next = engine.Resuming
	case !o.SkipInitialSync && m.InitRowsTotal > 0:
		next = engine.Initializing
		m.InitRowsDone = 0
	}
	e.log(name, o.Actor, "run", "run requested")
	e.setStatus(m, next)
	res.Status = next
	return res, nil
}

// Pause implements api.Engine.
func (e *Engine) Pause(ctx context.Context, name string, withRelated bool, actor string) (engine.ActionResult, error) {
	return e.transition(name, "Pause", engine.ActionPause, engine.Paused, actor)
}

// Stop implements api.Engine.
func (e *Engine) Stop(ctx context.Context, name string, actor string) (engine.ActionResult, error) {
	return e.transition(name, "Stop", engine.ActionStop, engine.NotRunning, actor)
}

func (e *Engine) transition(name, method string, a engine.Action, to engine.Status, actor string) (engine.ActionResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return engine.ActionResult{}, err
	}
	e.calls = append(e.calls, Call{Method: method, Map: name, Actor: actor})
	if err := allowed(m, a); err != nil {
		return engine.ActionResult{}, err
	}
	e.log(name, actor, "run", string(a)+" requested")
	e.setStatus(m, to)
	return engine.ActionResult{Map: name, Status: to}, nil
}

// InitErrors implements api.Engine.
func (e *Engine) InitErrors(ctx context.Context, name string) ([]engine.RowError, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(name); err != nil {
		return nil, err
	}
	return slices.Clone(e.initErrs[name]), nil
}

// CatchUpErrors implements api.Engine.
func (e *Engine) CatchUpErrors(ctx context.Context, name string) ([]engine.RowError, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.enter(name); err != nil {
		return nil, err
	}
	return slices.Clone(e.catchUp[name]), nil
}

// retryIn retries the selected errors of list (all when ids is empty):
// those in FailRetry stay, the others go.
func (e *Engine) retryIn(list []engine.RowError, ids []int64) ([]engine.RowError, engine.RetryResult) {
	var res engine.RetryResult
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
func (e *Engine) Rerun(ctx context.Context, name string, actor string) (engine.RetryResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return engine.RetryResult{}, err
	}
	e.calls = append(e.calls, Call{Method: "Rerun", Map: name, Actor: actor})
	kept, res := e.retryIn(e.initErrs[name], nil)
	e.initErrs[name] = kept
	m.InitErrors = int64(len(kept))
	e.log(name, actor, "run", fmt.Sprintf("rerun of %d errored rows", res.Retried))
	return res, nil
}

// Retry implements api.Engine.
func (e *Engine) Retry(ctx context.Context, name string, ids []int64, actor string) (engine.RetryResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.enter(name)
	if err != nil {
		return engine.RetryResult{}, err
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
	var kept []engine.RowError
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
func (e *Engine) Activity(ctx context.Context, name string, limit int) ([]engine.Activity, error) {
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

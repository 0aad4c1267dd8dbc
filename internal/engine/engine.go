// Package engine runs a link: per side a capture loop, per map the
// lifecycle, the initial sync, the live apply path with the conflict rule,
// and the catch-up replay of the durable queue.
//
// Data path, per source transaction on side S:
//
//	capture (connector) → echo filter (connector) → route per map:
//	  Running:                       map → resolve lookups → conflict rule → apply on the other side
//	  Paused/Initializing/Resuming:  append to the map's durable queue
//	→ record and acknowledge S's position
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualwrite/dualwrite/internal/checkpoint"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/queue"
	"github.com/dualwrite/dualwrite/internal/resolve"
	"github.com/dualwrite/dualwrite/internal/store"
)

// Queue is the durable queue the engine needs (internal/queue implements it).
type Queue interface {
	Append(ctx context.Context, e queue.Entry) (uint64, error)
	Read(ctx context.Context, mapName string, afterSeq uint64, max int) ([]queue.Entry, error)
	Trim(ctx context.Context, mapName string, uptoSeq uint64) error
	Stats(ctx context.Context, mapName string) (queue.Stats, error)
	Purge(ctx context.Context, mapName string) error
}

// Side is one side of the link as the engine sees it.
type Side struct {
	Name string
	Conn connector.Connector
}

// Options configure an engine.
type Options struct {
	Config      *config.Config
	Left, Right Side
	Store       *store.Store
	Queue       Queue
	Logger      *slog.Logger
	Now         func() time.Time
	// Observer is told of each apply and conflict resolved (the metrics).
	// Nil tells no one.
	Observer Observer
}

// Engine runs one link.
type Engine struct {
	cfg   *config.Config
	sides [2]*sideLoop
	store *store.Store
	queue Queue
	log   *slog.Logger
	now   func() time.Time
	obs   Observer

	maps  map[string]*mapState
	order []string // every map, in dependency order

	mu      sync.Mutex // guards statuses and the worker FIFO
	work    []string   // maps waiting for the init/resume worker, in order
	wake    chan struct{}
	running atomic.Bool
	cancel  context.CancelFunc
	// cancelWork stops the init/resume worker alone (ShutdownSoftly).
	cancelWork context.CancelFunc
	wg         sync.WaitGroup

	echo [2]atomic.Int64
	// shadows caches conflict shadows as stored (conflict.go).
	shadows shadowCache
	// identity is the record pairing of every map (internal/resolve).
	identity *resolve.Identity
	// live is the applied position of each direction's live stream, by
	// source side; owned by that side's capture loop.
	live [2]streamState
	// waitersNudge wakes the loop that retries keys whose awaited
	// reference arrived.
	waitersNudge chan struct{}
	// retainedWarned is when each side last warned about retained log;
	// owned by the watchQueues goroutine.
	retainedWarned [2]time.Time
	// watch is the health of the streams and the maps to stop (stall.go).
	watch streamWatch
}

type mapState struct {
	name     string
	cfg      config.Map
	m        *mapping.Map // nil when the map has validation problems
	problems []string
	rank     int

	// routeMu serialises routing a change (apply or queue) with status
	// changes, so that no change slips between a status check and its use.
	routeMu sync.Mutex
	// applyMu serialises applies of this map: the conflict rule reads and
	// writes the shadow.
	applyMu sync.Mutex

	status   Status // guarded by Engine.mu for reads from the API
	master   mapping.Side
	skipInit bool

	parked map[string]bool // keys with a catch-up error; guarded by applyMu
	// initErrFail is the first failure to record an initial sync error
	// since the chunk began; the chunk is then not marked done.
	initErrMu   sync.Mutex
	initErrFail error
	// parkErr is the first failure to park a change since the group began
	// (the control store refused it); guarded by applyMu.
	parkErr error
	// replay is the applied position of each direction's replay stream
	// (the map's queue, `map:erp->crm`); guarded by applyMu.
	replay      [2]streamState
	applied     [2]atomic.Int64 // by source side
	initErrs    atomic.Int64    // initial sync errors recorded since the engine started
	initDone    atomic.Int64
	initTotal   atomic.Int64
	lastWarning time.Time
	// att is why the map needs a look beyond its status (stall.go).
	att attention

	// Guarded by Engine.mu: the worker's hold on the map while it takes it
	// to Running (abort cancels that work, busy closes when it ends), a
	// Stop in progress, and the failed attempts in a row.
	abort         context.CancelFunc
	busy          chan struct{}
	stopping      bool
	startFailures int
	lastStartErr  string
}

// New builds an engine: it describes every mapped table, compiles the maps
// (a map with problems cannot run) and loads the persisted statuses.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observer == nil {
		o.Observer = noObserver{}
	}
	e := &Engine{
		cfg:   o.Config,
		store: o.Store,
		queue: o.Queue,
		log:   o.Logger,
		now:   o.Now,
		obs:   o.Observer,
		maps:  map[string]*mapState{},
		wake:  make(chan struct{}, 1),

		waitersNudge: make(chan struct{}, 1),
	}
	e.watch.wake = make(chan struct{}, 1) // hook (stall.go)
	e.sides[mapping.Left] = &sideLoop{idx: mapping.Left, name: o.Left.Name, conn: o.Left.Conn, reconf: make(chan chan error), check: checkpoint.New(o.Left.Name, o.Store)}
	e.sides[mapping.Right] = &sideLoop{idx: mapping.Right, name: o.Right.Name, conn: o.Right.Conn, reconf: make(chan chan error), check: checkpoint.New(o.Right.Name, o.Store)}

	compiled, issues := mapping.CompileAll(e.cfg, e.describeAll(ctx))
	byMap := map[string][]string{}
	for _, is := range e.cfg.Validate() {
		if is.Map != "" {
			byMap[is.Map] = append(byMap[is.Map], is.String())
		}
	}
	for _, is := range issues {
		byMap[is.Map] = append(byMap[is.Map], is.String())
	}
	states, err := e.store.MapStates(ctx)
	if err != nil {
		return nil, err
	}
	for i, cm := range e.cfg.Maps {
		ms := &mapState{name: cm.Name, cfg: cm, m: compiled[cm.Name], problems: byMap[cm.Name], rank: rankOf(cm, i), status: NotRunning, parked: map[string]bool{}}
		ms.master = masterSide(e.cfg, cm.Master)
		if st, ok := states[cm.Name]; ok {
			ms.status = ParseStatus(st.Status)
			if st.Master != "" {
				ms.master = masterSide(e.cfg, st.Master)
			}
			ms.skipInit = st.SkipInitialSync
			ms.initDone.Store(st.InitDone)
			ms.initTotal.Store(st.InitTotal)
		}
		if ms.m == nil && len(ms.problems) == 0 {
			ms.problems = []string{"map could not be compiled"}
		}
		parked, err := e.store.ParkedKeys(ctx, cm.Name)
		if err != nil {
			return nil, err
		}
		ms.parked = parked
		e.maps[cm.Name] = ms
	}
	names := make([]string, 0, len(e.maps))
	for _, cm := range e.cfg.Maps {
		names = append(names, cm.Name)
	}
	e.order = dependencyOrder(names, e.deps, e.rank)
	valid := map[string]*mapping.Map{}
	for n, ms := range e.maps {
		if ms.m != nil {
			valid[n] = ms.m
		}
	}
	e.identity = resolve.New(e.store, valid, resolve.DefaultCapacity)
	return e, nil
}

func rankOf(cm config.Map, i int) int {
	if cm.Order != 0 {
		return cm.Order
	}
	return i
}

func masterSide(cfg *config.Config, m string) mapping.Side {
	switch m {
	case "left", cfg.Link.Left.Name:
		return mapping.Left
	}
	return mapping.Right
}

// describeAll returns a Tables function backed by the connectors. Tables
// are described once; a failure to describe is a missing table.
func (e *Engine) describeAll(ctx context.Context) mapping.Tables {
	cache := map[[2]string]connector.Table{}
	missing := map[[2]string]bool{}
	return func(s mapping.Side, table string) (connector.Table, bool) {
		k := [2]string{s.String(), table}
		if t, ok := cache[k]; ok {
			return t, true
		}
		if missing[k] {
			return connector.Table{}, false
		}
		t, err := e.sides[s].conn.Describe(ctx, table)
		if err != nil {
			if !errors.Is(err, connector.ErrNoTable) {
				e.log.Warn("describe table failed", "side", e.sides[s].name, "table", table, "err", err)
			}
			missing[k] = true
			return connector.Table{}, false
		}
		cache[k] = t
		return t, true
	}
}

func (e *Engine) deps(name string) []string {
	return e.cfg.Dependencies(name)
}

func (e *Engine) rank(name string) int {
	if ms, ok := e.maps[name]; ok {
		return ms.rank
	}
	return 1 << 30
}

// Start runs the capture loops and resumes every map where it was: a map
// that was Initializing continues its initial sync, a Resuming map its
// replay. Start returns at once; Shutdown ends what it started.
func (e *Engine) Start(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("engine already started")
	}
	ctx, e.cancel = context.WithCancel(ctx)
	for _, s := range e.sides {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.runSide(ctx, s)
		}()
	}
	e.mu.Lock()
	for _, n := range e.order {
		if st := e.maps[n].status; st == Initializing || st == Resuming {
			e.work = append(e.work, n)
		}
	}
	e.mu.Unlock()
	e.signal()
	workCtx, cancelWork := context.WithCancel(ctx)
	e.cancelWork = cancelWork
	e.wg.Add(4)
	go func() {
		defer e.wg.Done()
		e.runWorker(workCtx)
	}()
	go func() { // hook (stall.go): stalls shown and logged, maps stopped on request
		defer e.wg.Done()
		e.watchAttention(ctx)
	}()
	go func() {
		defer e.wg.Done()
		e.runWaiters(ctx)
	}()
	go func() {
		defer e.wg.Done()
		e.watchQueues(ctx)
	}()
	return nil
}

// Shutdown stops the engine: capture loops stop between transactions, an
// initial sync stops between chunks with its progress saved, and every
// goroutine has ended when Stop returns. It is idempotent.
func (e *Engine) Shutdown() {
	if !e.running.CompareAndSwap(true, false) {
		return
	}
	e.cancel()
	e.wg.Wait()
}

// ShutdownSoftly stops the engine softly, then hard. First the initial
// syncs and catch-ups stop (each saves its progress; the chunk in flight
// is rolled back and redone at the next start, idempotently). Then each
// side's capture loop is asked to finish the transactions it is handling:
// it applies or queues them, records and acknowledges their position, and
// answers. Then Shutdown cancels everything left. When ctx ends before the
// sides have answered, Shutdown cancels at once: nothing is lost, the
// transactions in flight are rolled back and delivered again at restart.
func (e *Engine) ShutdownSoftly(ctx context.Context) {
	if !e.running.Load() {
		return
	}
	e.cancelWork()
	var wg sync.WaitGroup
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.reconfigure(ctx, s); err != nil && ctx.Err() == nil {
				e.log.Warn("soft stop of capture failed", "side", e.sideName(s), "err", err)
			}
		}()
	}
	wg.Wait()
	e.Shutdown()
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) lookupMap(name string) (*mapState, error) {
	ms, ok := e.maps[name]
	if !ok {
		return nil, problem.New(problem.MapNotFound, "map %s not found; `dualwrite maps list` shows the maps", name)
	}
	return ms, nil
}

func (e *Engine) statusOf(ms *mapState) Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return ms.status
}

// setStatus persists and publishes a status change and logs it.
func (e *Engine) setStatus(ctx context.Context, ms *mapState, st Status, actor string) error {
	if err := e.store.SetStatus(ctx, ms.name, string(st), ms.master.String(), ms.skipInit); err != nil {
		return err
	}
	e.mu.Lock()
	old := ms.status
	ms.status = st
	e.mu.Unlock()
	e.activity(ctx, ms.name, actor, "status", fmt.Sprintf("%s → %s", old, st))
	e.log.Info("map status changed", "map", ms.name, "from", string(old), "to", string(st), "actor", actor)
	return nil
}

// activity writes an activity log entry; a failure is logged, not returned,
// because the log must never stop data flowing.
func (e *Engine) activity(ctx context.Context, name, actor, kind, msg string) {
	if err := e.store.Log(context.WithoutCancel(ctx), name, actor, kind, msg); err != nil {
		e.log.Warn("activity log write failed", "map", name, "err", err)
	}
}

func (e *Engine) sideName(s mapping.Side) string { return e.sides[s].name }

func (e *Engine) sideIndex(name string) (mapping.Side, bool) {
	for _, s := range e.sides {
		if s.name == name {
			return s.idx, true
		}
	}
	return 0, false
}

func (e *Engine) direction(from mapping.Side) string {
	return e.sideName(from) + "->" + e.sideName(from.Other())
}

// Run runs a map (Not running → Initializing, Paused → Resuming). The maps
// it depends on that are not running yet are returned as Related; with
// WithRelated they are run first, in dependency order.
func (e *Engine) Run(ctx context.Context, name string, o RunOptions) (ActionResult, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return ActionResult{}, err
	}
	actor := actorOr(o.Actor)
	related := e.related(name, func(st Status) bool { return st == Running || st == Initializing || st == Resuming })
	if _, err := Next(name, e.statusOf(ms), ActionRun); err != nil {
		return ActionResult{}, err
	}
	if len(ms.problems) > 0 {
		return ActionResult{}, problem.New(problem.MapInvalid, "map %s cannot run: %s; fix the configuration and restart the engine (`dualwrite validate` lists every problem)", name, ms.problems[0])
	}
	if o.Master != "" {
		switch o.Master {
		case "left", "right", e.cfg.Link.Left.Name, e.cfg.Link.Right.Name:
		default:
			return ActionResult{}, problem.New(problem.ConfigInvalid, "master %q is not a side; use %s or %s", o.Master, e.cfg.Link.Left.Name, e.cfg.Link.Right.Name)
		}
	}
	chain := []string{name}
	if o.WithRelated {
		for _, r := range related {
			if rs := e.maps[r]; len(rs.problems) > 0 {
				return ActionResult{}, problem.New(problem.MapInvalid, "related map %s cannot run: %s", r, rs.problems[0])
			}
		}
		chain = append(slices.Clone(related), name)
	}
	var acted []string
	for _, n := range chain {
		rs := e.maps[n]
		st := e.statusOf(rs)
		if n != name && st != NotRunning && st != Paused {
			continue // already on its way
		}
		if err := e.startRun(ctx, rs, o, actor, n == name); err != nil {
			return ActionResult{}, err
		}
		acted = append(acted, n)
	}
	res := ActionResult{Map: name, Status: e.statusOf(ms), Related: related}
	if o.WithRelated {
		res.Acted = acted
	}
	return res, nil
}

func (e *Engine) startRun(ctx context.Context, ms *mapState, o RunOptions, actor string, self bool) error {
	ms.routeMu.Lock()
	defer ms.routeMu.Unlock()
	st := e.statusOf(ms)
	to, err := Next(ms.name, st, ActionRun)
	if err != nil {
		return err
	}
	if st == NotRunning {
		if err := e.beforeRun(ctx, ms); err != nil { // hook (stall.go): the tables fit again after a schema change
			return err
		}
		ms.skipInit = o.SkipInitialSync || (ms.cfg.InitialSync != nil && !*ms.cfg.InitialSync)
		ms.master = masterSide(e.cfg, ms.cfg.Master)
		if self && o.Master != "" {
			ms.master = masterSide(e.cfg, o.Master)
		}
		if err := e.store.ResetInit(ctx, ms.name); err != nil {
			return err
		}
		if err := e.queue.Purge(ctx, ms.name); err != nil {
			return fmt.Errorf("purge queue of map %s: %w", ms.name, err)
		}
		ms.initDone.Store(0)
		ms.initTotal.Store(0)
		if err := e.store.SetInitCounts(ctx, ms.name, 0, 0); err != nil {
			return err
		}
		e.activity(ctx, ms.name, actor, "run", fmt.Sprintf("run (initial sync %s, master %s)", onOff(!ms.skipInit), e.sideName(ms.master)))
	} else {
		e.activity(ctx, ms.name, actor, "run", "resume")
	}
	if err := e.setStatus(ctx, ms, to, actor); err != nil {
		return err
	}
	e.mu.Lock()
	e.work = append(e.work, ms.name)
	e.mu.Unlock()
	e.signal()
	return nil
}

// Pause pauses a Running map: capture goes on into the durable queue.
func (e *Engine) Pause(ctx context.Context, name string, withRelated bool, actor string) (ActionResult, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return ActionResult{}, err
	}
	actor = actorOr(actor)
	related := e.related(name, func(st Status) bool { return st == Paused })
	if _, err := Next(name, e.statusOf(ms), ActionPause); err != nil {
		return ActionResult{}, err
	}
	chain := []string{name}
	if withRelated {
		chain = append(slices.Clone(related), name)
	}
	var acted []string
	for _, n := range chain {
		rs := e.maps[n]
		rs.routeMu.Lock()
		st := e.statusOf(rs)
		if st != Running {
			rs.routeMu.Unlock()
			if n == name {
				_, err := Next(name, st, ActionPause)
				return ActionResult{}, err
			}
			continue
		}
		err := e.setStatus(ctx, rs, Paused, actor)
		rs.routeMu.Unlock()
		if err != nil {
			return ActionResult{}, err
		}
		acted = append(acted, n)
	}
	res := ActionResult{Map: name, Status: e.statusOf(ms), Related: related}
	if withRelated {
		res.Acted = acted
	}
	return res, nil
}

// Stop stops a map. From Running, capture of its tables ends and its
// queue is dropped. From Initializing or Resuming it aborts the initial
// sync or the catch-up first: the worker's context is cancelled and Stop
// waits for it to let go, so the map cannot reach Running afterwards.
// Either way a side that no map uses any more releases its log.
func (e *Engine) Stop(ctx context.Context, name string, actor string) (ActionResult, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return ActionResult{}, err
	}
	actor = actorOr(actor)
	st := e.statusOf(ms)
	if _, err := Next(name, st, ActionStop); err != nil {
		return ActionResult{}, err
	}
	if st == Initializing || st == Resuming {
		if err := e.abortStart(ctx, ms); err != nil {
			return ActionResult{}, err
		}
		defer func() {
			e.mu.Lock()
			ms.stopping = false
			e.mu.Unlock()
		}()
	}
	ms.routeMu.Lock()
	st = e.statusOf(ms)
	if _, err := Next(name, st, ActionStop); err != nil {
		ms.routeMu.Unlock()
		return ActionResult{}, err
	}
	if st != Running {
		e.activity(ctx, ms.name, actor, "run", fmt.Sprintf("stop: %s aborted", map[Status]string{Initializing: "initial sync", Resuming: "catch-up"}[st]))
	}
	err = e.setStatus(ctx, ms, NotRunning, actor)
	ms.routeMu.Unlock()
	if err != nil {
		return ActionResult{}, err
	}
	e.mu.Lock()
	ms.startFailures, ms.lastStartErr = 0, ""
	e.mu.Unlock()
	if err := e.queue.Purge(ctx, ms.name); err != nil {
		e.log.Warn("purge queue failed", "map", name, "err", err)
	}
	if err := e.store.SetQueueCursor(ctx, ms.name, 0); err != nil {
		e.log.Warn("reset queue cursor failed", "map", name, "err", err)
	}
	if ms.m != nil {
		for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
			if err := e.reconfigure(ctx, s); err != nil {
				e.log.Warn("capture reconfiguration failed", "side", e.sideName(s), "err", err)
			}
		}
	}
	return ActionResult{Map: name, Status: NotRunning}, nil
}

// related returns the maps name depends on, transitively, whose status is
// not yet the target (done reports the target), in dependency order.
func (e *Engine) related(name string, done func(Status) bool) []string {
	var out []string
	for _, d := range transitiveDeps(name, e.deps) {
		if ds, ok := e.maps[d]; ok && !done(e.statusOf(ds)) {
			out = append(out, d)
		}
	}
	return dependencyOrder(out, e.deps, e.rank)
}

func actorOr(a string) string {
	if a == "" {
		return "api"
	}
	return a
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// activeTables returns the tables of side s that capture must watch: those
// of maps that are not Not running and whose data flows from s.
func (e *Engine) activeTables(s mapping.Side) (tables, fullOld []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.order {
		ms := e.maps[n]
		if ms.m == nil || ms.status == NotRunning || !ms.m.Flows(s) {
			continue
		}
		t := ms.m.Table(s)
		if !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
		if !slices.Contains(fullOld, t) {
			fullOld = append(fullOld, t)
		}
	}
	return tables, fullOld
}

// runWorker runs initial syncs and queue replays one map at a time, in the
// order they were asked for, so that a map's dependencies (run first with
// --with-related) are synced before it.
func (e *Engine) runWorker(ctx context.Context) {
	for {
		e.mu.Lock()
		var ms *mapState
		for ms == nil && len(e.work) > 0 {
			ms, e.work = e.maps[e.work[0]], e.work[1:]
			if ms.stopping {
				ms = nil
			}
		}
		var mctx context.Context
		var done chan struct{}
		if ms != nil {
			// The map's own context, so that Stop can abort this work
			// without stopping the engine.
			mctx, ms.abort = context.WithCancel(ctx)
			done = make(chan struct{})
			ms.busy = done
		}
		e.mu.Unlock()
		if ms == nil {
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
				continue
			}
		}
		err := e.bringUp(mctx, ms)
		e.noteStart(ms, err) // hook (stall.go): a map that cannot come up shows why
		aborted := mctx.Err() != nil && ctx.Err() == nil
		e.mu.Lock()
		ms.abort()
		ms.abort, ms.busy = nil, nil
		failures := 0
		if err != nil && !aborted && ctx.Err() == nil {
			ms.startFailures++
			ms.lastStartErr = err.Error()
			failures = ms.startFailures
		} else if err == nil {
			ms.startFailures, ms.lastStartErr = 0, ""
		}
		e.mu.Unlock()
		close(done)
		if err == nil || aborted {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		e.startFailed(ctx, ms, failures, err)
	}
}

// bringUp takes an Initializing or Resuming map to Running.
func (e *Engine) bringUp(ctx context.Context, ms *mapState) error {
	st := e.statusOf(ms)
	if st != Initializing && st != Resuming {
		return nil
	}
	// Invariant: capture of the map's tables is on (changes go to the
	// queue) before the initial sync reads anything, so no change falls
	// between the snapshot and the stream.
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		// A capture loop that keeps failing to open does not take the
		// request; bound the wait, so the attempt fails, is counted and
		// shown, and is tried again.
		rctx, cancel := context.WithTimeout(ctx, captureOpenTimeout)
		err := e.reconfigure(rctx, s)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("capture did not open within %s; the engine log says why", captureOpenTimeout)
			}
			return fmt.Errorf("start capture on %s: %w", e.sideName(s), err)
		}
	}
	if st == Initializing && !ms.skipInit {
		if err := e.initialSync(ctx, ms); err != nil {
			return err
		}
	}
	return e.drain(ctx, ms)
}

// MapNames returns every map name in dependency order.
func (e *Engine) MapNames() []string { return slices.Clone(e.order) }

// Status returns a map's status.
func (e *Engine) Status(name string) (Status, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return "", err
	}
	return e.statusOf(ms), nil
}

// EchoesSuppressed returns how many of the engine's own writes the capture
// of a side dropped.
func (e *Engine) EchoesSuppressed(side string) int64 {
	s, ok := e.sideIndex(side)
	if !ok {
		return 0
	}
	return e.echo[s].Load()
}

func keyJSON(vals []any) string {
	b, err := encodeKey(vals)
	if err != nil {
		return fmt.Sprint(vals)
	}
	return b
}

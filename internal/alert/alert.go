// Package alert watches every map against its alert rules, takes a rule's
// action (pause or stop) when its condition starts to hold, tells the
// configured channels (webhook, e-mail), and says when the condition
// clears. Every alert, action and notification goes into the map's
// activity log.
//
// An alert fires once per episode: while its condition holds it is not
// repeated; when the condition stops holding it clears, and a later
// episode fires again.
package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Engine is what the watcher reads and acts on.
type Engine interface {
	Maps(ctx context.Context) ([]wire.MapView, error)
	Activity(ctx context.Context, name string, limit int) ([]wire.Activity, error)
	Pause(ctx context.Context, name string, withRelated bool, actor string) (wire.ActionResult, error)
	Stop(ctx context.Context, name string, actor string) (wire.ActionResult, error)
}

// Store keeps the rules edited at run time and the activity log
// (internal/store implements it).
type Store interface {
	AlertRules(ctx context.Context) (map[string][]byte, error)
	AlertRulesSet(ctx context.Context, name, actor string, rules []byte) error
	Log(ctx context.Context, name, actor, kind, message string) error
}

// Actor is the actor the activity log records for alerts and their actions.
const Actor = "alert"

// Kind is the activity log kind of alert entries.
const Kind = "alert"

// DefaultInterval is how often the rules are evaluated.
const DefaultInterval = time.Second

// activityWindow bounds how many recent activity entries an errors rule
// counts; a rule asking for more errors than this is capped by it.
const activityWindow = 5000

// Options configure a Watcher.
type Options struct {
	Config *config.Config
	Engine Engine
	Store  Store
	// MapURL returns the web page of a map, linked from every alert. Nil
	// links nothing.
	MapURL func(name string) string
	// Interval between evaluations; DefaultInterval when zero.
	Interval time.Duration
	// HTTPClient sends webhooks; a client with a 10s timeout when nil.
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
}

// Watcher evaluates the alert rules of every map.
type Watcher struct {
	o        Options
	channels []channel

	mu    sync.Mutex
	rules map[string][]config.AlertRule // current rules by map
	state map[string][]ruleState        // by map, one per rule

	// runMu makes evaluations exclusive: the loop and Check never
	// overlap, so an alert cannot fire twice.
	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// ruleState is what the watcher remembers of one rule.
type ruleState struct {
	Firing bool
	Since  time.Time // when the current episode began
	Detail string
}

// RuleStatus is a rule with its current state, for the web workspace.
type RuleStatus struct {
	Rule   config.AlertRule
	Firing bool
	Since  time.Time
	Detail string
}

// New returns a watcher over the configured rules, replaced per map by the
// rules edited at run time and kept in the store.
func New(ctx context.Context, o Options) (*Watcher, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	w := &Watcher{o: o, rules: map[string][]config.AlertRule{}, state: map[string][]ruleState{}}
	for _, h := range o.Config.Notify.Webhooks {
		w.channels = append(w.channels, &webhook{cfg: h, client: o.HTTPClient})
	}
	for _, e := range o.Config.Notify.Email {
		w.channels = append(w.channels, &email{cfg: e})
	}
	for _, m := range o.Config.Maps {
		w.rules[m.Name] = slices.Clone(m.Alerts)
		w.state[m.Name] = make([]ruleState, len(m.Alerts))
	}
	edited, err := o.Store.AlertRules(ctx)
	if err != nil {
		return nil, err
	}
	for name, data := range edited {
		if _, ok := w.rules[name]; !ok {
			continue // the map left the configuration
		}
		var rules []config.AlertRule
		if err := json.Unmarshal(data, &rules); err != nil {
			return nil, fmt.Errorf("read edited alert rules of map %s: %w", name, err)
		}
		w.rules[name] = rules
		w.state[name] = make([]ruleState, len(rules))
	}
	return w, nil
}

// Channels returns the names of the configured channels.
func (w *Watcher) Channels() []string { return w.o.Config.Notify.ChannelNames() }

// Rules returns a map's rules and their state.
func (w *Watcher) Rules(name string) []RuleStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	rules := w.rules[name]
	out := make([]RuleStatus, len(rules))
	for i, r := range rules {
		st := w.state[name][i]
		out[i] = RuleStatus{Rule: r, Firing: st.Firing, Since: st.Since, Detail: st.Detail}
	}
	return out
}

// SetRules replaces a map's rules, keeps them in the store so that they
// outlive a restart, and records the change in the activity log. A rule
// with problems is refused with DW1002 and nothing changes.
func (w *Watcher) SetRules(ctx context.Context, name, actor string, rules []config.AlertRule) error {
	w.mu.Lock()
	_, ok := w.rules[name]
	w.mu.Unlock()
	if !ok {
		return problem.New(problem.MapNotFound, "map %s not found; `dualwrite maps list` shows the maps", name)
	}
	for i := range rules {
		rules[i].ApplyDefaults()
		if msgs := w.o.Config.ValidateAlertRule(rules[i]); len(msgs) > 0 {
			return problem.New(problem.ConfigInvalid, "alert rule %d of map %s: %s", i+1, name, msgs[0])
		}
	}
	data, err := json.Marshal(rules)
	if err != nil {
		return fmt.Errorf("encode alert rules of map %s: %w", name, err)
	}
	if err := w.o.Store.AlertRulesSet(ctx, name, actor, data); err != nil {
		return err
	}
	w.runMu.Lock()
	w.mu.Lock()
	w.rules[name] = slices.Clone(rules)
	w.state[name] = make([]ruleState, len(rules))
	w.mu.Unlock()
	w.runMu.Unlock()
	desc := make([]string, len(rules))
	for i, r := range rules {
		desc[i] = r.String()
	}
	msg := "alert rules changed: none"
	if len(desc) > 0 {
		msg = "alert rules changed: " + strings.Join(desc, "; ")
	}
	w.log(ctx, name, actor, msg)
	return nil
}

// Start evaluates the rules every Interval until Stop.
func (w *Watcher) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.o.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.Check(ctx)
			}
		}
	}()
}

// Stop ends the loop Start began and waits for it. It is idempotent.
func (w *Watcher) Stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
}

// Check evaluates every rule of every map once.
func (w *Watcher) Check(ctx context.Context) {
	w.runMu.Lock()
	defer w.runMu.Unlock()
	views, err := w.o.Engine.Maps(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.o.Logger.Warn("alert check could not read the maps", "err", err)
		}
		return
	}
	for _, v := range views {
		w.checkMap(ctx, v)
	}
}

func (w *Watcher) checkMap(ctx context.Context, v wire.MapView) {
	w.mu.Lock()
	rules := slices.Clone(w.rules[v.Name])
	w.mu.Unlock()
	if len(rules) == 0 {
		return
	}
	in := &input{view: v, now: w.o.Now(), retention: w.o.Config.Engine.QueueRetention.D()}
	if needsActivity(rules) {
		acts, err := w.o.Engine.Activity(ctx, v.Name, activityWindow)
		if err != nil {
			w.o.Logger.Warn("alert check could not read the activity log", "map", v.Name, "err", err)
			return
		}
		in.activity = acts
	}
	for i, r := range rules {
		holds, detail := evaluate(r, in)
		w.mu.Lock()
		if len(w.state[v.Name]) != len(rules) {
			w.mu.Unlock()
			return // the rules changed meanwhile; the next check uses them
		}
		st := &w.state[v.Name][i]
		was := st.Firing
		switch {
		case holds && !was:
			*st = ruleState{Firing: true, Since: in.now, Detail: detail}
		case !holds && was:
			*st = ruleState{}
		case holds:
			st.Detail = detail
		}
		w.mu.Unlock()
		switch {
		case holds && !was:
			w.fire(ctx, v, r, detail)
		case !holds && was:
			w.clear(ctx, v, r)
		}
	}
}

func (w *Watcher) fire(ctx context.Context, v wire.MapView, r config.AlertRule, detail string) {
	w.log(ctx, v.Name, Actor, fmt.Sprintf("%s alert %s: %s%s", problem.AlertFired, r, detail, w.link(v.Name)))
	w.o.Logger.Warn("alert fired", "map", v.Name, "rule", r.String(), "detail", detail)
	action := "no action (notify only)"
	switch r.Action {
	case config.AlertPause, config.AlertStop:
		if err := w.act(ctx, v, r.Action); err != nil {
			action = err.Error()
		} else if r.Action == config.AlertPause {
			action = "paused the map"
		} else {
			action = "stopped the map"
		}
		w.log(ctx, v.Name, Actor, "alert action: "+action)
	}
	w.notify(ctx, r, Alert{
		Map: v.Name, Rule: r.String(), When: r.When, State: StateFiring, Detail: detail,
		Action: action, URL: w.url(v.Name), Time: w.o.Now().UTC(),
	})
}

func (w *Watcher) act(ctx context.Context, v wire.MapView, action string) error {
	var err error
	if action == config.AlertPause {
		_, err = w.o.Engine.Pause(ctx, v.Name, false, Actor)
	} else {
		_, err = w.o.Engine.Stop(ctx, v.Name, Actor)
	}
	if err != nil {
		return problem.Wrap(problem.AlertActionFailed, err, "%s could not %s map %s: %v", problem.AlertActionFailed, action, v.Name, err)
	}
	return nil
}

func (w *Watcher) clear(ctx context.Context, v wire.MapView, r config.AlertRule) {
	w.log(ctx, v.Name, Actor, fmt.Sprintf("alert cleared %s: the condition no longer holds%s", r, w.link(v.Name)))
	w.o.Logger.Info("alert cleared", "map", v.Name, "rule", r.String())
	w.notify(ctx, r, Alert{
		Map: v.Name, Rule: r.String(), When: r.When, State: StateCleared,
		Detail: "the condition no longer holds", URL: w.url(v.Name), Time: w.o.Now().UTC(),
	})
}

// notify tells the rule's channels and logs each delivery or failure.
func (w *Watcher) notify(ctx context.Context, r config.AlertRule, a Alert) {
	for _, c := range w.channels {
		if len(r.Notify) > 0 && !slices.Contains(r.Notify, c.name()) {
			continue
		}
		err := c.send(ctx, a)
		if err != nil {
			w.o.Logger.Warn("alert notification failed", "map", a.Map, "channel", c.name(), "err", err)
			w.log(ctx, a.Map, Actor, fmt.Sprintf("%s %s %s not delivered: %v; check notify: in the configuration", problem.NotifyFailed, c.kind(), c.name(), err))
			continue
		}
		w.log(ctx, a.Map, Actor, fmt.Sprintf("notified %s %s (%s): %s", c.kind(), c.name(), c.target(), a.State))
	}
}

func (w *Watcher) log(ctx context.Context, name, actor, msg string) {
	if err := w.o.Store.Log(context.WithoutCancel(ctx), name, actor, Kind, msg); err != nil {
		w.o.Logger.Warn("activity log write failed", "map", name, "err", err)
	}
}

func (w *Watcher) url(name string) string {
	if w.o.MapURL == nil {
		return ""
	}
	return w.o.MapURL(name)
}

func (w *Watcher) link(name string) string {
	if u := w.url(name); u != "" {
		return "; see " + u
	}
	return ""
}

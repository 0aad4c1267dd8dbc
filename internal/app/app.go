// Package app is the composition root: it turns a configuration into
// running parts (connectors, control store, durable queue, engine, HTTP
// API) and takes them down again in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/dualwrite/dualwrite/internal/alert"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/engine"
	"github.com/dualwrite/dualwrite/internal/metrics"
	"github.com/dualwrite/dualwrite/internal/ownership"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/queue"
	"github.com/dualwrite/dualwrite/internal/store"
	"github.com/dualwrite/dualwrite/internal/web"
)

// Version is set at build time.
var Version = "dev"

// Running is a started link: engine, alerts, and the API and the web
// workspace on one listener.
type Running struct {
	Config *config.Config
	Engine *engine.Engine
	// Alerts evaluates the maps' alert rules.
	Alerts *alert.Watcher
	// Addr is the address the API and the workspace listen on; URL is
	// their base URL.
	Addr string
	URL  string
	// Tokens are the access tokens, read from (or created in) data_dir.
	Tokens auth.Tokens
	// Metrics is the registry behind /metrics.
	Metrics *metrics.Metrics

	log   *slog.Logger
	lock  *store.DirLock
	conns []connector.Connector
	store *store.Store
	queue *queue.Queue
	srv   *http.Server
	ui    *web.Server
	done  chan error
	// stopWatch ends the ownership watch; watched is closed when it ended.
	stopWatch context.CancelFunc
	watched   chan struct{}
}

// Start takes the data_dir's lock, opens everything the configuration
// describes and starts the engine and the API. Close takes it all down.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Running, error) {
	// An insecure listen is refused before anything is created.
	if err := checkListen(cfg.Engine); err != nil {
		return nil, err
	}
	// Invariant: one engine per data_dir; the lock comes before anything
	// else is opened.
	lock, err := store.LockDir(cfg.Engine.DataDir)
	if err != nil {
		return nil, err
	}
	return StartLocked(ctx, cfg, log, lock)
}

// StartLocked is Start for a caller that already holds the data_dir's
// lock (demo takes it before it creates its databases). The Running owns
// the lock from then on, also when StartLocked fails.
func StartLocked(ctx context.Context, cfg *config.Config, log *slog.Logger, lock *store.DirLock) (*Running, error) {
	if log == nil {
		log = slog.Default()
	}
	// done takes the API server's end and the ownership watch's verdict.
	r := &Running{Config: cfg, log: log, lock: lock, done: make(chan error, 2)}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	if err := checkListen(cfg.Engine); err != nil {
		return nil, err
	}
	left, err := OpenSide(ctx, cfg, cfg.Link.Left, log)
	if err != nil {
		return nil, err
	}
	r.conns = append(r.conns, left)
	right, err := OpenSide(ctx, cfg, cfg.Link.Right, log)
	if err != nil {
		return nil, err
	}
	r.conns = append(r.conns, right)
	if r.store, err = store.Open(ctx, cfg.Engine.DataDir, nil); err != nil {
		return nil, err
	}
	if r.Tokens, err = auth.LoadOrCreate(cfg.Engine.DataDir); err != nil {
		return nil, err
	}
	link := linkOf(cfg, r.store, left, right)
	if err := ownership.Check(ctx, link); err != nil {
		return nil, err
	}
	r.queue, err = queue.Open(ctx, queue.Options{
		Dir:       filepath.Join(cfg.Engine.DataDir, "queue"),
		URL:       cfg.Engine.QueueURL,
		Prefix:    "DW-" + sanitize(cfg.Link.Name),
		Retention: cfg.Engine.QueueRetention.D(),
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("open durable queue: %w", err)
	}
	r.Metrics = metrics.New(metrics.Options{Version: Version})
	r.Engine, err = engine.New(ctx, engine.Options{
		Config:   cfg,
		Left:     engine.Side{Name: cfg.Link.Left.Name, Conn: left},
		Right:    engine.Side{Name: cfg.Link.Right.Name, Conn: right},
		Store:    r.store,
		Queue:    r.queue,
		Logger:   log,
		Observer: r.Metrics,
	})
	if err != nil {
		return nil, err
	}
	for _, v := range mustViews(ctx, r.Engine) {
		for _, p := range v.Problems {
			log.Warn("map has a validation problem and cannot run", "map", v.Name, "problem", p)
		}
	}
	r.Metrics.Watch(r.Engine)
	ln, err := listen(cfg.Engine)
	if err != nil {
		return nil, err
	}
	r.Addr = ln.Addr().String()
	r.URL = "http://" + r.Addr
	if cfg.Engine.TLS() {
		r.URL = "https://" + r.Addr
	}
	if err := r.Engine.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return nil, err
	}
	r.Alerts, err = alert.New(ctx, alert.Options{
		Config: cfg,
		Engine: r.Engine,
		Store:  r.store,
		MapURL: func(name string) string { return r.URL + "/maps/" + url.PathEscape(name) },
		Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	r.Alerts.Start(context.WithoutCancel(ctx))
	r.ui, err = web.New(web.Options{Config: cfg, Engine: r.Engine, Alerts: r.Alerts, Logger: log, Version: Version})
	if err != nil {
		ln.Close()
		return nil, err
	}
	r.ui.Start(context.WithoutCancel(ctx))
	authn := auth.New(auth.Options{Tokens: r.Tokens, Secure: cfg.Engine.TLS(), TrustedOrigins: cfg.Engine.TrustedOrigins, Logger: log})
	srv := &http.Server{Handler: handler(r.Engine, r.Metrics, authn, r.ui.Handler(), log), ReadHeaderTimeout: 10 * time.Second}
	r.srv = srv
	go func() {
		err := srv.Serve(ln) // not r.srv: Close clears it
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.done <- err
	}()
	r.watchOwnership(context.WithoutCancel(ctx), link)
	log.Info("engine started", "link", cfg.Link.Name, "workspace", r.URL+"/", "api", r.URL+"/api/v1",
		"token", auth.TokenPath(cfg.Engine.DataDir, auth.Operator))
	ok = true
	return r, nil
}

func mustViews(ctx context.Context, e *engine.Engine) []engine.MapView {
	v, _ := e.Maps(ctx)
	return v
}

// Done reports the API server's end.
func (r *Running) Done() <-chan error { return r.done }

// ShutdownGrace is how long Close lets the engine finish the transactions
// in flight and save positions before it cancels them.
const ShutdownGrace = 10 * time.Second

// Close stops the API and the workspace, the alerts, then the engine softly (it finishes the
// transactions in flight and saves positions, for at most ShutdownGrace),
// then closes the queue, the store and the connectors. It is idempotent.
func (r *Running) Close() {
	if r.stopWatch != nil {
		r.stopWatch()
		<-r.watched
		r.stopWatch = nil
	}
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.srv.Shutdown(ctx)
		cancel()
		r.srv = nil
	}
	if r.ui != nil {
		r.ui.Stop()
		r.ui = nil
	}
	if r.Alerts != nil {
		r.Alerts.Stop()
		r.Alerts = nil
	}
	if r.Engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		r.Engine.ShutdownSoftly(ctx)
		cancel()
		r.Engine = nil
	}
	if r.queue != nil {
		_ = r.queue.Close()
		r.queue = nil
	}
	if r.store != nil {
		_ = r.store.Close()
		r.store = nil
	}
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.conns = nil
	_ = r.lock.Unlock()
	r.lock = nil
}

// Serve runs the engine for a configuration file until ctx ends.
func Serve(ctx context.Context, path string, log *slog.Logger) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	// Problems of the link or the engine settings stop everything; a map's
	// own problems only keep that map from running.
	var global []config.Issue
	for _, is := range cfg.Validate() {
		if is.Map == "" {
			global = append(global, is)
		}
	}
	if len(global) > 0 {
		// The first problem is the error, with its own code (a listen
		// address refused for want of TLS is DW2310, not a generic DW1002);
		// the others are logged.
		for _, is := range global[1:] {
			log.Error("configuration problem", "problem", is.String())
		}
		first := global[0]
		where := first.File
		if first.Pos.Line > 0 {
			where += fmt.Sprintf(":%d:%d", first.Pos.Line, first.Pos.Column)
		}
		more := ""
		if len(global) > 1 {
			more = fmt.Sprintf(" (and %d more problems; `dualwrite validate %s` lists them)", len(global)-1, path)
		}
		return problem.New(first.Code, "cannot start: %s: %s: %s%s", where, first.Path, first.Message, more)
	}
	r, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer r.Close()
	select {
	case <-ctx.Done():
		log.Info("stopping: finishing the current transaction and saving positions")
		return nil
	case err := <-r.Done():
		return err
	}
}

func sanitize(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			out = append(out, c)
		} else {
			out = append(out, '-')
		}
	}
	if len(out) > 29 {
		out = out[:29] // the queue's prefix allows 32 characters with "DW-"
	}
	return string(out)
}

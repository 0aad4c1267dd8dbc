// Package web is the operator's workspace: server-rendered HTML pages over
// the engine, in the manner of the dual-write workspace. The table maps
// list with each map's status and the actions its status allows, the run
// dialog (related maps, master per map, order, initial sync), and a page
// per map with tabs: initial sync details, catch-up errors, activity log,
// alert settings, queue, and columns and lookups.
//
// Pages are Go templates; htmx (embedded, no build step) refreshes the
// live parts by polling small fragments. Every action is a plain HTML form
// that works without script, so the workspace is usable from the keyboard
// and with scripts off.
package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/alert"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// htmxVersion is the embedded htmx release (static/README.md).
const htmxVersion = "4.0.1"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Engine is what the workspace reads and acts on: the same views and
// actions as the HTTP API.
type Engine interface {
	Maps(ctx context.Context) ([]wire.MapView, error)
	Map(ctx context.Context, name string) (wire.MapView, error)
	Run(ctx context.Context, name string, o wire.RunOptions) (wire.ActionResult, error)
	Pause(ctx context.Context, name string, withRelated bool, actor string) (wire.ActionResult, error)
	Stop(ctx context.Context, name string, actor string) (wire.ActionResult, error)
	InitErrors(ctx context.Context, name string) ([]wire.RowError, error)
	Rerun(ctx context.Context, name string, actor string) (wire.RetryResult, error)
	CatchUpErrors(ctx context.Context, name string) ([]wire.RowError, error)
	Retry(ctx context.Context, name string, ids []int64, actor string) (wire.RetryResult, error)
	Discard(ctx context.Context, name string, ids []int64, actor string) (int, error)
	Activity(ctx context.Context, name string, limit int) ([]wire.Activity, error)
}

// Alerts is what the alert settings tab needs (internal/alert implements
// it).
type Alerts interface {
	Rules(name string) []alert.RuleStatus
	SetRules(ctx context.Context, name, actor string, rules []config.AlertRule) error
	Channels() []string
}

// Options configure a Server.
type Options struct {
	Config *config.Config
	Engine Engine
	// Alerts backs the alert settings tab; nil shows the configured rules
	// read-only.
	Alerts Alerts
	Logger *slog.Logger
	// Version is shown in the footer.
	Version string
	// SampleEvery is how often the lag history behind the sparklines is
	// sampled. Default 2s.
	SampleEvery time.Duration
	Now         func() time.Time
}

// Server serves the workspace.
type Server struct {
	o     Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	lag   *lagHistory

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Server; Start begins the lag sampling.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, log: o.Logger, mux: http.NewServeMux(), lag: newLagHistory(60)}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Handler returns the workspace's handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Start samples every map's lag until Stop, for the sparklines.
func (s *Server) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.o.SampleEvery)
		defer t.Stop()
		for {
			s.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the sampling and waits for it. It is idempotent.
func (s *Server) Stop() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
		s.cancel = nil
	}
}

func (s *Server) sample(ctx context.Context) {
	views, err := s.o.Engine.Maps(ctx)
	if err != nil {
		return
	}
	for _, v := range views {
		s.lag.add(v.Name, maxLagSeconds(v))
	}
}

// route is one workspace route.
type route struct {
	pattern string
	handler func(*Server) http.HandlerFunc
}

const mapPrefix = "/maps/{name}"

var routeTable = []route{
	{"GET /{$}", func(s *Server) http.HandlerFunc { return s.listPage }},
	{"GET /fragments/maps", func(s *Server) http.HandlerFunc { return s.listRows }},
	{"GET " + mapPrefix, func(s *Server) http.HandlerFunc { return s.mapPage }},
	{"GET " + mapPrefix + "/fragments/header", func(s *Server) http.HandlerFunc { return s.mapHeader }},
	{"GET " + mapPrefix + "/run", func(s *Server) http.HandlerFunc { return s.runDialog }},
	{"POST " + mapPrefix + "/run", func(s *Server) http.HandlerFunc { return s.runPost }},
	{"POST " + mapPrefix + "/pause", func(s *Server) http.HandlerFunc { return s.pausePost }},
	{"POST " + mapPrefix + "/stop", func(s *Server) http.HandlerFunc { return s.stopPost }},
	{"POST " + mapPrefix + "/rerun", func(s *Server) http.HandlerFunc { return s.rerunPost }},
	{"POST " + mapPrefix + "/full-rerun", func(s *Server) http.HandlerFunc { return s.fullRerunPost }},
	{"POST " + mapPrefix + "/skip-initial-sync", func(s *Server) http.HandlerFunc { return s.skipInitialPost }},
	{"POST " + mapPrefix + "/catchup", func(s *Server) http.HandlerFunc { return s.catchUpPost }},
	{"POST " + mapPrefix + "/alerts", func(s *Server) http.HandlerFunc { return s.alertsPost }},
	{"GET " + mapPrefix + "/activity.csv", func(s *Server) http.HandlerFunc { return s.activityCSV }},
	{"GET " + mapPrefix + "/activity.json", func(s *Server) http.HandlerFunc { return s.activityJSON }},
	{"GET /static/", nil}, // the embedded assets
}

// Routes lists the workspace's routes ("GET /maps/{name}"), for tests that
// check every route is behind authentication.
func Routes() []string {
	out := make([]string, len(routeTable))
	for i, r := range routeTable {
		out[i] = r.pattern
	}
	return out
}

func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	for _, r := range routeTable {
		if r.handler == nil {
			s.mux.Handle(r.pattern, http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
			continue
		}
		s.mux.HandleFunc(r.pattern, r.handler(s))
	}
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// actor is who the activity log records for an action taken in the
// workspace: the signed-in token, or "web" when served without
// authentication (tests of this package).
func actor(r *http.Request) string {
	if id, ok := auth.FromContext(r.Context()); ok {
		return id.Actor()
	}
	return "web"
}

// fail answers a request that could not be served with a page saying why.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status >= 500 {
		s.log.Error("web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.WriteHeader(status)
	s.render(w, r, "error", pageData{Title: "Error", Error: err.Error()})
}

// render executes a page or fragment template.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// Pages load only their own script and styles and cannot be framed,
	// so another site can neither inject script nor trick a click on an
	// action button.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if err := t.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render template", "template", name, "path", r.URL.Path, "err", err)
	}
}

func (s *Server) parseTemplates() error {
	base, err := template.New("base").Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return fmt.Errorf("parse workspace templates: %w", err)
	}
	s.pages = map[string]*template.Template{}
	for _, p := range []string{"list", "map", "run", "error"} {
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(templateFS, "templates/"+p+".html"); err != nil {
			return fmt.Errorf("parse workspace template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	// Fragments are defined in parts.html and rendered on their own.
	for _, f := range []string{"rows", "header"} {
		s.pages[f] = base
	}
	return nil
}

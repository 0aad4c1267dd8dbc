// Package api is the engine's HTTP JSON API: map status, the lifecycle
// actions (run, pause, stop), initial sync and catch-up errors, and the
// activity log. docs/API.md documents every route.
//
// The API knows the engine only through the small Engine interface, so it
// can be served over any implementation of it.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Engine is what the API needs from the engine.
type Engine interface {
	Maps(ctx context.Context) ([]wire.MapView, error)
	Map(ctx context.Context, name string) (wire.MapView, error)
	Run(ctx context.Context, name string, o wire.RunOptions) (wire.ActionResult, error)
	Pause(ctx context.Context, name string, withRelated bool, actor string) (wire.ActionResult, error)
	Stop(ctx context.Context, name string, actor string) (wire.ActionResult, error)
	InitErrors(ctx context.Context, name string) ([]wire.RowError, error)
	Rerun(ctx context.Context, name string, actor string) (wire.RetryResult, error) // retries only the errored initial-sync rows
	CatchUpErrors(ctx context.Context, name string) ([]wire.RowError, error)
	Retry(ctx context.Context, name string, ids []int64, actor string) (wire.RetryResult, error) // ids nil or empty = all
	Discard(ctx context.Context, name string, ids []int64, actor string) (int, error)            // ids nil or empty = all
	Activity(ctx context.Context, name string, limit int) ([]wire.Activity, error)
}

// Options configure a Server.
type Options struct {
	// Logger receives one debug record per request and the errors behind
	// 500 responses. Nil discards them.
	Logger *slog.Logger
	// Version is reported by GET /api/v1/health.
	Version string
}

// Server serves the API over an Engine.
type Server struct {
	engine  Engine
	log     *slog.Logger
	version string
	mux     *http.ServeMux
}

// New returns a Server over e.
func New(e Engine, o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{engine: e, log: log, version: o.Version, mux: http.NewServeMux()}
	s.routes()
	return s
}

// Handler returns the API's handler: the routes wrapped in request logging
// and panic recovery.
func (s *Server) Handler() http.Handler {
	return s.logRequests(s.recoverPanics(http.HandlerFunc(s.dispatch)))
}

// route is one route of the API.
type route struct {
	pattern string // "METHOD /path", as http.ServeMux reads it
	handler func(s *Server) http.HandlerFunc
}

const mapRoute = "/api/v1/maps/{name}"

var routeTable = []route{
	{"GET /api/v1/health", func(s *Server) http.HandlerFunc { return s.health }},
	{"GET /api/v1/maps", func(s *Server) http.HandlerFunc { return s.listMaps }},
	{"GET " + mapRoute, func(s *Server) http.HandlerFunc { return s.showMap }},
	{"POST " + mapRoute + "/run", func(s *Server) http.HandlerFunc { return s.run }},
	{"POST " + mapRoute + "/pause", func(s *Server) http.HandlerFunc { return s.pause }},
	{"POST " + mapRoute + "/stop", func(s *Server) http.HandlerFunc { return s.stop }},
	{"GET " + mapRoute + "/errors", func(s *Server) http.HandlerFunc { return s.initErrors }},
	{"POST " + mapRoute + "/rerun", func(s *Server) http.HandlerFunc { return s.rerun }},
	{"GET " + mapRoute + "/catchup-errors", func(s *Server) http.HandlerFunc { return s.catchUpErrors }},
	{"POST " + mapRoute + "/catchup-errors/retry", func(s *Server) http.HandlerFunc { return s.retry }},
	{"POST " + mapRoute + "/catchup-errors/discard", func(s *Server) http.HandlerFunc { return s.discard }},
	{"GET " + mapRoute + "/activity", func(s *Server) http.HandlerFunc { return s.activity }},
}

// Routes lists every route of the API as "METHOD /path" with {name} for
// the map's name, in the order docs/API.md documents them.
func Routes() []string {
	out := make([]string, len(routeTable))
	for i, r := range routeTable {
		out[i] = r.pattern
	}
	return out
}

func (s *Server) routes() {
	for _, r := range routeTable {
		s.mux.HandleFunc(r.pattern, r.handler(s))
	}
}

// dispatch routes r. Requests no route matches get a JSON error body like
// every other failure instead of ServeMux's plain-text 404 and 405.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Let ServeMux decide between 404 and 405 (and set Allow), then
	// replace its plain-text body.
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if rec.status == http.StatusMethodNotAllowed {
		writeProblem(w, http.StatusMethodNotAllowed, problem.BadRequest,
			"method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+rec.header.Get("Allow")+"; see docs/API.md")
		return
	}
	writeProblem(w, http.StatusNotFound, problem.BadRequest,
		"no route "+r.Method+" "+r.URL.Path+"; see docs/API.md for the routes")
}

// headerRecorder captures the status and headers of ServeMux's own error
// handlers and drops their body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

// Package metrics serves the engine's Prometheus metrics at /metrics.
//
// Most figures are read from the engine's views at each scrape (a custom
// collector), so they are the same numbers `dualwrite maps list` and the
// workspace show: changes applied, recorded errors, lag, queue, initial
// sync progress, status. The two figures the views do not keep, the apply
// latency histogram and the conflicts resolved, come from the engine's
// Observer hook, which Metrics implements:
//
//	m := metrics.New(metrics.Options{Version: v})
//	e, _ := engine.New(ctx, engine.Options{..., Observer: m})
//	m.Watch(e)
//	mux.Handle("/metrics", m.Handler())
//
// docs/METRICS.md lists every metric; deploy/grafana/dualwrite.json is a
// dashboard built on them.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dualwrite/dualwrite/internal/store"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Source is what the collector reads from the engine at each scrape.
type Source interface {
	Maps(ctx context.Context) ([]wire.MapView, error)
	Lags(ctx context.Context) []wire.SideLag
	ErrorCounts(ctx context.Context, name string) (map[string]store.ErrorCounts, error)
	SideNames() []string
	EchoesSuppressed(side string) int64
}

// Options configure Metrics.
type Options struct {
	// Version is reported by dualwrite_build_info.
	Version string
	// ScrapeTimeout bounds reading the views at one scrape. Default 10s.
	ScrapeTimeout time.Duration
}

// Metrics is the registry of the engine's metrics. It implements the
// engine's Observer.
type Metrics struct {
	reg       *prometheus.Registry
	applyDur  *prometheus.HistogramVec
	applyTxs  *prometheus.CounterVec
	conflicts *prometheus.CounterVec
	timeout   time.Duration

	mu  sync.Mutex
	src Source
}

const ns = "dualwrite"

// ApplyBuckets are the apply latency histogram's buckets, in seconds: from
// a single-row commit on loopback to a slow group on a loaded server.
var ApplyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// New returns Metrics with the Go runtime and process collectors.
func New(o Options) *Metrics {
	if o.ScrapeTimeout <= 0 {
		o.ScrapeTimeout = 10 * time.Second
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		timeout: o.ScrapeTimeout,
		applyDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "apply_duration_seconds",
			Help:    "Time from the start to the commit of one target transaction of live sync or catch-up, per map and direction.",
			Buckets: ApplyBuckets,
		}, []string{"map", "direction"}),
		applyTxs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "apply_changes_observed_total",
			Help: "Changes carried by the target transactions timed in apply_duration_seconds, per map and direction.",
		}, []string{"map", "direction"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "conflicts_resolved_total",
			Help: "Keys changed on both sides that the conflict rule settled, per map, direction and winning side.",
		}, []string{"map", "direction", "winner"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info", Help: "Always 1; the label names the engine's version.",
	}, []string{"version"})
	buildInfo.WithLabelValues(o.Version).Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, m.applyDur, m.applyTxs, m.conflicts, viewCollector{m},
	)
	return m
}

// Watch makes the collector read src's views from the next scrape on.
func (m *Metrics) Watch(src Source) {
	m.mu.Lock()
	m.src = src
	m.mu.Unlock()
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry, for tests and for adding collectors (alerts).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Applied implements engine.Observer.
func (m *Metrics) Applied(mapName, direction string, changes int, took time.Duration) {
	m.applyDur.WithLabelValues(mapName, direction).Observe(took.Seconds())
	m.applyTxs.WithLabelValues(mapName, direction).Add(float64(changes))
}

// ConflictResolved implements engine.Observer.
func (m *Metrics) ConflictResolved(mapName, direction, winner string) {
	m.conflicts.WithLabelValues(mapName, direction, winner).Inc()
}

func (m *Metrics) source() Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.src
}

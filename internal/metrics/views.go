package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualwrite/dualwrite/internal/wire"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
}

// The figures read from the engine's views at each scrape.
var (
	descApplied = desc("applied_changes_total",
		"Changes applied by live sync and catch-up since the engine started, per map and direction.", "map", "direction")
	descRowErrors = desc("row_errors",
		"Row errors recorded and not yet retried or discarded, per map, direction and phase (initial_sync, catch_up).", "map", "direction", "phase")
	descStatus = desc("map_status",
		"1 for the map's current lifecycle status, 0 for the others.", "map", "status")
	descStartFailures = desc("map_start_failures",
		"Failed attempts in a row to take the map from Initializing or Resuming to Running.", "map")
	descInitDone = desc("initial_sync_rows_done",
		"Rows the map's current or last initial sync has handled.", "map")
	descInitTotal = desc("initial_sync_rows_total",
		"Rows the map's current or last initial sync has to handle.", "map")
	descInitRatio = desc("initial_sync_progress_ratio",
		"initial_sync_rows_done / initial_sync_rows_total, 1 when there is nothing to do.", "map")
	descQueueDepth = desc("queue_depth",
		"Transactions waiting in the map's durable queue (Paused, Initializing or Resuming).", "map")
	descQueueBytes = desc("queue_bytes",
		"Bytes held by the map's durable queue.", "map")
	descQueueAge = desc("queue_age_seconds",
		"Age of the oldest transaction in the map's durable queue; 0 when it is empty.", "map")
	descLastSync = desc("last_sync_timestamp_seconds",
		"Unix time of the map's last applied change; absent before the first.", "map")
	descLagSeconds = desc("lag_seconds",
		"Capture lag of a side: age of the oldest change not yet applied.", "side")
	descLagBytes = desc("lag_bytes",
		"Capture lag of a side in bytes of its log (WAL, binlog) not yet confirmed.", "side")
	descRetained = desc("retained_log_bytes",
		"Log (WAL, binlog) the side's server keeps for the engine.", "side")
	descEchoes = desc("echoes_suppressed_total",
		"Changes captured on a side that were the engine's own writes and were dropped.", "side")
	descScrapeErr = desc("scrape_error",
		"1 when reading the engine's views failed at this scrape (the log says why).")
)

// viewCollector reads the engine's views at each scrape. Its metrics are
// unchecked only in label values: every description is known up front.
type viewCollector struct{ m *Metrics }

func (c viewCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplied, descRowErrors, descStatus, descStartFailures, descInitDone, descInitTotal,
		descInitRatio, descQueueDepth, descQueueBytes, descQueueAge, descLastSync, descLagSeconds, descLagBytes, descRetained,
		descEchoes, descScrapeErr} {
		ch <- d
	}
}

func (c viewCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.source()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.m.timeout)
	defer cancel()
	failed := 0.0
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	maps, err := src.Maps(ctx)
	if err != nil {
		failed = 1
	}
	for _, v := range maps {
		for dir, n := range v.Applied {
			counter(descApplied, float64(n), v.Name, dir)
		}
		counts, err := src.ErrorCounts(ctx, v.Name)
		if err != nil {
			failed = 1
		}
		for dir, n := range counts {
			gauge(descRowErrors, float64(n.InitialSync), v.Name, dir, "initial_sync")
			gauge(descRowErrors, float64(n.CatchUp), v.Name, dir, "catch_up")
		}
		for _, st := range []wire.Status{wire.NotRunning, wire.Initializing, wire.Running, wire.Paused, wire.Resuming} {
			on := 0.0
			if v.Status == st {
				on = 1
			}
			gauge(descStatus, on, v.Name, string(st))
		}
		gauge(descStartFailures, float64(v.StartFailures), v.Name)
		gauge(descInitDone, float64(v.InitRowsDone), v.Name)
		gauge(descInitTotal, float64(v.InitRowsTotal), v.Name)
		ratio := 1.0
		if v.InitRowsTotal > 0 {
			ratio = min(float64(v.InitRowsDone)/float64(v.InitRowsTotal), 1)
		}
		gauge(descInitRatio, ratio, v.Name)
		gauge(descQueueDepth, float64(v.QueueDepth), v.Name)
		gauge(descQueueBytes, float64(v.QueueBytes), v.Name)
		gauge(descQueueAge, v.QueueAgeSec, v.Name)
		if !v.LastSync.IsZero() {
			gauge(descLastSync, float64(v.LastSync.UnixMilli())/1000, v.Name)
		}
	}
	for _, l := range src.Lags(ctx) {
		gauge(descLagSeconds, l.Seconds, l.Side)
		gauge(descLagBytes, float64(l.Bytes), l.Side)
		gauge(descRetained, float64(l.RetainedLog), l.Side)
	}
	for _, s := range src.SideNames() {
		counter(descEchoes, float64(src.EchoesSuppressed(s)), s)
	}
	gauge(descScrapeErr, failed)
}

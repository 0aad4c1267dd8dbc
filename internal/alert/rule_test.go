package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/wire"
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	errAt := func(d time.Duration) wire.Activity {
		return wire.Activity{Kind: "error", Actor: "engine", Time: ago(d)}
	}
	rule := func(r config.AlertRule) config.AlertRule { r.ApplyDefaults(); return r }
	lag := func(sec float64, retained int64) []wire.SideLag {
		return []wire.SideLag{{Side: "erp", Seconds: 1}, {Side: "crm", Seconds: sec, RetainedLog: retained}}
	}
	for _, tc := range []struct {
		name   string
		rule   config.AlertRule
		view   wire.MapView
		acts   []wire.Activity
		holds  bool
		detail string
	}{
		{"errors at the threshold", rule(config.AlertRule{When: "errors", Errors: 3, Within: config.Duration(time.Minute)}), wire.MapView{},
			[]wire.Activity{errAt(time.Second), {Kind: "status", Time: ago(2 * time.Second)}, errAt(10 * time.Second), errAt(59 * time.Second), errAt(2 * time.Minute)}, true, "3 errors in the last 1m"},
		{"errors outside the window do not count", rule(config.AlertRule{When: "errors", Errors: 3, Within: config.Duration(time.Minute)}), wire.MapView{},
			[]wire.Activity{errAt(time.Second), errAt(61 * time.Second), errAt(2 * time.Minute)}, false, "1 errors in the last 1m"},
		{"lag above", rule(config.AlertRule{When: "lag", LagAbove: config.Duration(time.Minute)}), wire.MapView{Lag: lag(90, 0)}, nil, true, "crm lags 1m30s behind"},
		{"lag below", rule(config.AlertRule{When: "lag", LagAbove: config.Duration(time.Minute)}), wire.MapView{Lag: lag(30, 0)}, nil, false, "crm lags 30s behind"},
		{"queue age above share", rule(config.AlertRule{When: "queue_age", RetentionPercent: 50}), wire.MapView{QueueDepth: 4, QueueAgeSec: 13 * 3600}, nil, true, "the oldest of 4 queued changes is 13h0m0s old"},
		{"empty queue", rule(config.AlertRule{When: "queue_age", RetentionPercent: 50}), wire.MapView{QueueAgeSec: 13 * 3600}, nil, false, ""},
		{"retained log", rule(config.AlertRule{When: "retained_log", RetainedLogAbove: 1 << 20}), wire.MapView{Lag: lag(0, 3<<20)}, nil, true, "crm retains 3 MiB of log"},
		{"stream failing long enough", rule(config.AlertRule{When: "stream", StalledAfter: config.Duration(time.Minute)}), wire.MapView{Status: wire.Resuming, StartFailures: 2, LastStartError: "crm unreachable"},
			[]wire.Activity{errAt(time.Second), errAt(2 * time.Minute), {Kind: "run", Time: ago(3 * time.Minute)}}, true, "Resuming has been failing for 2m0s (2 attempts): crm unreachable"},
		{"stream failing, then progress", rule(config.AlertRule{When: "stream", StalledAfter: config.Duration(time.Minute)}), wire.MapView{Status: wire.Resuming},
			[]wire.Activity{{Kind: "run", Time: ago(time.Second)}, errAt(2 * time.Minute)}, false, "the stream progresses"},
		{"running stream stalled", rule(config.AlertRule{When: "stream", StalledAfter: config.Duration(time.Minute)}), wire.MapView{Status: wire.Running, Lag: lag(120, 0)}, nil, true, "no progress for 2m0s"},
		{"initial sync ended with errors", rule(config.AlertRule{When: "initial_sync"}), wire.MapView{Status: wire.Running, InitErrors: 2}, nil, true, "ended with 2 failed rows"},
		{"initial sync still running", rule(config.AlertRule{When: "initial_sync"}), wire.MapView{Status: wire.Initializing, InitErrors: 2}, []wire.Activity{{Kind: "run", Time: ago(time.Second)}}, false, ""},
		{"initial sync failing", rule(config.AlertRule{When: "initial_sync"}), wire.MapView{Status: wire.Initializing, StartFailures: 3, LastStartError: "table missing"}, []wire.Activity{errAt(time.Second)}, true, "(3 attempts): table missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			holds, detail := evaluate(tc.rule, &input{view: tc.view, activity: tc.acts, now: now, retention: 24 * time.Hour})
			if holds != tc.holds || !strings.Contains(detail, tc.detail) {
				t.Errorf("evaluate = %v, %q; want %v, containing %q", holds, detail, tc.holds, tc.detail)
			}
		})
	}
}

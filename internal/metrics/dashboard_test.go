package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// knownNames returns the names of every metric the package defines.
func knownNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Options{Version: "test"})
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range []prometheus.Collector{viewCollector{m}, m.applyDur, m.applyTxs, m.conflicts} {
			c.Describe(ch)
		}
		close(ch)
	}()
	re := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	out := map[string]bool{}
	for d := range ch {
		if s := re.FindStringSubmatch(d.String()); s != nil {
			out[s[1]] = true
		}
	}
	return out
}

// TestDashboardUsesOnlyDefinedMetrics keeps deploy/grafana/dualwrite.json
// true: it is valid JSON and every dualwrite_ metric its queries name is
// one this package serves.
func TestDashboardUsesOnlyDefinedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/grafana/dualwrite.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	known := knownNames(t)
	if len(known) < 15 {
		t.Fatalf("only %d metrics found: %v", len(known), known)
	}
	used := map[string]bool{}
	re := regexp.MustCompile(`dualwrite_[a-z_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				base := name
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(name, suf); ok && known[b] {
						base = b
					}
				}
				if !known[base] {
					t.Errorf("panel %q queries %s, which dualwrite does not serve", p.Title, name)
				}
				used[base] = true
			}
		}
	}
	for _, must := range []string{"applied_changes_total", "row_errors", "lag_seconds", "lag_bytes", "queue_depth",
		"queue_age_seconds", "initial_sync_progress_ratio", "apply_duration_seconds", "conflicts_resolved_total"} {
		if !used["dualwrite_"+must] {
			t.Errorf("the dashboard does not show dualwrite_%s", must)
		}
	}
}

package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/metrics"
)

// TestObserverFeedsHistogramAndConflicts: what the engine reports through
// its Observer hook shows in /metrics.
func TestObserverFeedsHistogramAndConflicts(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{Version: "test"})
	m.Applied("customers", "erp->crm", 3, 4*time.Millisecond)
	m.Applied("customers", "erp->crm", 1, 2*time.Second)
	m.ConflictResolved("customers", "crm->erp", "erp")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`dualwrite_apply_duration_seconds_bucket{direction="erp->crm",map="customers",le="0.005"} 1`,
		`dualwrite_apply_duration_seconds_bucket{direction="erp->crm",map="customers",le="2.5"} 2`,
		`dualwrite_apply_duration_seconds_count{direction="erp->crm",map="customers"} 2`,
		`dualwrite_apply_changes_observed_total{direction="erp->crm",map="customers"} 4`,
		`dualwrite_conflicts_resolved_total{direction="crm->erp",map="customers",winner="erp"} 1`,
		`dualwrite_build_info{version="test"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

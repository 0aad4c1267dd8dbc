package health_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/health"
)

func TestReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		ready  health.ReadyFunc
		status int
		body   string
	}{
		{"ready", func(context.Context) []string { return nil }, 200, "ready"},
		{"side down", func(context.Context) []string { return []string{"side erp is unreachable: refused"} }, 503, "side erp is unreachable"},
		{"check outlives the timeout", func(ctx context.Context) []string { <-ctx.Done(); return nil }, 503, "did not answer within"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		health.Ready(c.ready, 50*time.Millisecond).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, rec.Code, rec.Body.String(), c.status, c.body)
		}
	}
	rec := httptest.NewRecorder()
	health.Live("v1.2").ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "v1.2") {
		t.Errorf("healthz: %d %q", rec.Code, rec.Body.String())
	}
}

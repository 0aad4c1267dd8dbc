// Package health serves the engine's probes: /healthz (liveness: the
// process answers) and /readyz (readiness: both sides answer and no stream
// is stuck). Both are plain text, unauthenticated (they reveal no data),
// and cheap enough for a probe every few seconds.
package health

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ReadyFunc is the readiness hook: what keeps the engine from doing its
// work now, one line each; none means ready. engine.(*Engine).Ready is one.
type ReadyFunc func(ctx context.Context) []string

// Live answers 200 "ok" while the process serves HTTP.
func Live(version string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "ok %s\n", version)
	})
}

// Ready answers 200 "ready" when ready reports nothing, else 503 with one
// line per finding. A check that outlives timeout counts as a finding.
func Ready(ready ReadyFunc, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		found := ready(ctx)
		if len(found) == 0 && ctx.Err() != nil {
			found = []string{"readiness checks did not answer within " + timeout.String()}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if len(found) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready\n%s\n", strings.Join(found, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/dualwrite/dualwrite/internal/api"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/engine"
	"github.com/dualwrite/dualwrite/internal/health"
	"github.com/dualwrite/dualwrite/internal/metrics"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// readyTimeout bounds the readiness checks of one /readyz request.
const readyTimeout = 5 * time.Second

// checkListen refuses, before anything is opened, to serve tokens in clear
// text to other machines: a non-loopback engine.listen needs TLS or the
// explicit engine.insecure_listen.
func checkListen(e config.Engine) error {
	if e.LoopbackListen() || e.TLS() || e.InsecureListen {
		return nil
	}
	return problem.New(problem.ListenInsecure,
		"refusing to listen on %s without TLS: it is reachable from other machines and the access tokens would cross the network in clear text; "+
			"set engine.tls_cert and engine.tls_key, listen on 127.0.0.1, or set engine.insecure_listen: true if the network is trusted", e.Listen)
}

// listen opens engine.listen, wrapped in TLS when configured. A port in
// use is DW2311.
func listen(e config.Engine) (net.Listener, error) {
	var tlsCfg *tls.Config
	if e.TLS() {
		cert, err := tls.LoadX509KeyPair(e.TLSCert, e.TLSKey)
		if err != nil {
			return nil, problem.Wrap(problem.ConfigInvalid, err, "load engine.tls_cert %s and engine.tls_key %s", e.TLSCert, e.TLSKey)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", e.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, problem.Wrap(problem.PortInUse, err,
				"cannot listen on %s (engine.listen): another process uses the port; stop it or choose another port", e.Listen)
		}
		return nil, fmt.Errorf("listen on %s (engine.listen): %w", e.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return ln, nil
}

// handler is everything the engine serves on engine.listen, behind
// authentication: the API under /api/, /metrics, the probes (public), and
// the web workspace at every other path.
//
// Invariant: every route but /healthz, /readyz and /login passes through
// auth.Authenticator.Wrap.
func handler(e *engine.Engine, m *metrics.Metrics, a *auth.Authenticator, ui http.Handler, log *slog.Logger) http.Handler {
	apiHandler := api.New(e, api.Options{Logger: log, Version: Version}).Handler()
	mux := http.NewServeMux()
	mux.Handle("/healthz", health.Live(Version))
	mux.Handle("/readyz", health.Ready(e.Ready, readyTimeout))
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("/api/", apiHandler)
	mux.Handle("/", ui)
	return a.Wrap(mux)
}

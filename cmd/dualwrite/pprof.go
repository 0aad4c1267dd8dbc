package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// servePprof serves Go's runtime profiles (net/http/pprof) on the address
// in DUALWRITE_PPROF, e.g. 127.0.0.1:6060, for measuring the engine
// (BENCHMARKS.md). Unset, nothing listens. A diagnostic only: it is not
// part of the configuration and a failure to listen is logged, not fatal.
func servePprof(log *slog.Logger) {
	addr := os.Getenv("DUALWRITE_PPROF")
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("pprof listener not started", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Lives as long as the process: the profiles are read while it runs.
	go func() { _ = http.Serve(l, mux) }()
}

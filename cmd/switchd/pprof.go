package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime"
	"time"
)

// Profiling (bench/README.md): SWITCHD_PPROF_ADDR=127.0.0.1:6060 serves
// Go's /debug/pprof/ on that address, on its own listener and mux (never
// the admin endpoint's), loopback only; unset (the default) serves nothing.
// SWITCHD_PPROF_CONTENTION=1 also samples blocking and mutex contention,
// which costs a little on the hot path.
const (
	pprofAddrEnv       = "SWITCHD_PPROF_ADDR"
	pprofContentionEnv = "SWITCHD_PPROF_CONTENTION"
)

// errPprofNotLoopback is returned for a profiling address off loopback:
// profiles show internals (and heap dumps may hold card data in memory).
var errPprofNotLoopback = errors.New("profiling is served on a loopback address only (127.0.0.0/8 or [::1])")

// startPprof serves the profiler on addr when it is not empty.
func startPprof(addr, contention string, stderr io.Writer) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", pprofAddrEnv, addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%s=%q: %w", pprofAddrEnv, addr, errPprofNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", pprofAddrEnv, err)
	}
	if contention == "1" {
		runtime.SetBlockProfileRate(10_000) // about one sample per 10 µs blocked
		runtime.SetMutexProfileFraction(100)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stderr, "switchd: profiling on http://%s/debug/pprof/ (%s)\n", ln.Addr(), pprofAddrEnv)
	return nil
}

// Command issuersim runs emulated issuer approval hosts: the three demo
// issuers by default, or those of a YAML file, until SIGINT or SIGTERM.
// With --admin it also serves issuer.AdminHandler (ledger with masked PANs,
// counters, mode, latency and fault switches) on that address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/simulator/issuer"
)

func main() { os.Exit(run()) }

func run() int {
	configPath := flag.String("config", "", "YAML file with `issuers: [...]` (default: card-a, card-b, prepaid on 127.0.0.1:9101-9103)")
	latency := flag.Duration("latency", 0, "response delay applied to every issuer (overrides the config)")
	modeName := flag.String("mode", "normal", "normal or silent (read financial requests, never answer)")
	adminAddr := flag.String("admin", "", "serve the admin API (GET /ledger, /stats; POST /issuers/{name}/mode, /latency, /fault) on this address, e.g. 127.0.0.1:9100; no authentication, keep it on loopback")
	flag.Parse()

	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "issuersim: logger:", err)
		return 1
	}
	defer log.Sync() //nolint:errcheck // stderr sync fails on some terminals

	mode, err := issuer.ParseMode(*modeName)
	if err != nil {
		log.Error("bad --mode", zap.Error(err))
		return 2
	}
	cfgs := issuer.DefaultIssuers()
	if *configPath != "" {
		if cfgs, err = issuer.LoadConfig(*configPath); err != nil {
			log.Error("loading config", zap.Error(err))
			return 2
		}
	}
	latencySet := false
	flag.Visit(func(f *flag.Flag) { latencySet = latencySet || f.Name == "latency" })

	var running []*issuer.Issuer
	defer func() {
		for _, is := range running {
			if err := is.Close(); err != nil {
				log.Error("closing issuer", zap.String("issuer", is.Name()), zap.Error(err))
			}
		}
	}()
	for _, cfg := range cfgs {
		if latencySet {
			cfg.Latency = *latency
		}
		is, err := issuer.New(cfg, log)
		if err != nil {
			log.Error("configuring issuer", zap.Error(err))
			return 1
		}
		is.SetMode(mode)
		if err := is.Start(); err != nil {
			log.Error("starting issuer", zap.Error(err))
			return 1
		}
		running = append(running, is)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *adminAddr != "" {
		ln, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			log.Error("admin endpoint", zap.Error(err))
			return 1
		}
		srv := &http.Server{Handler: issuer.AdminHandler(running), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin endpoint stopped", zap.Error(err))
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		log.Info("admin endpoint listening", zap.String("addr", ln.Addr().String()))
	}
	<-ctx.Done()
	log.Info("shutting down")
	return 0
}

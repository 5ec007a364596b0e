// Command issuersim runs emulated issuer approval hosts: the three demo
// issuers by default, or those of a YAML file, until SIGINT or SIGTERM.
// With --admin it also serves issuer.AdminHandler (ledger with masked PANs,
// counters, mode, latency distribution, fault and fault schedule switches)
// on that address. issuersim -h prints the YAML layout (configHelp).
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

// configHelp is the --config YAML layout, printed by -h.
const configHelp = `
--config YAML (every key but name, addr and bins optional):

  issuers:
    - name: card-a
      addr: 127.0.0.1:9101
      bins: ["9410"]
      default_balance: 1000000
      balances: {"<card number>": 50000}   # a Luhn-valid PAN under bins
      spec: issuer87                # built-in dialect or a JSON spec path
      header: ascii4                # binary2, ascii4 or bcd2
      zpk: <32 or 48 hex digits>    # clear zone PIN key shared with the switch
      pin: "1234"
      pins: {"<card number>": "0000"}
      reversals: true               # false: refunds only (prepaid)
      # latency: 20ms               # a fixed delay, or (not both) a distribution:
      latency_dist: {kind: lognormal, median: 20ms, p99: 300ms, max: 2s}
        # {kind: fixed, value: 20ms} | {kind: uniform, min: 5ms, max: 50ms}
        # | {kind: pareto, median: 20ms, p99: 300ms}   (min floors, max caps long tails)
      seed: 42                      # random draws; 0 or absent: time-based (logged)
      fault:                        # from the start; percentages of requests
        drop_percent: 5             # read, never answered
        garbage_percent: 2          # answered with random bytes in a valid length header
        wrong_stan_percent: 2       # answered with DE 11 changed
                                    # (drop + garbage + wrong_stan <= 100)
        late_by: 2s                 # extra delay ...
        late_percent: 10            # ... for this share of answers (0: all)
        disconnect: false           # drop the link after the next 0100/0200, once
        charge_when_silent: false   # unanswered requests are still applied
      schedule:                     # offsets since start, [from, to); to absent: no end;
                                    # a window's fault replaces the one above
        - {from: 10s, to: 15s, fault: {drop_percent: 100}}
        - {from: 30s, to: 40s, fault: {garbage_percent: 20}}
`

func main() { os.Exit(run()) }

func run() int {
	configPath := flag.String("config", "", "YAML file with `issuers: [...]`, layout below (default: card-a, card-b, prepaid on 127.0.0.1:9101-9103)")
	latency := flag.Duration("latency", 0, "fixed response delay applied to every issuer (overrides the config)")
	latencyDist := flag.String("latency-dist", "", "response delay distribution for every issuer (overrides the config): `kind,key=duration,...` such as fixed,value=20ms | uniform,min=5ms,max=50ms | lognormal,median=20ms,p99=300ms[,max=2s] | pareto,median=20ms,p99=300ms")
	seed := flag.Uint64("seed", 0, "seed of the random draws (latency, fault percentages, garbage); issuer i gets seed+i; 0 keeps the config's or a time-based one")
	modeName := flag.String("mode", "normal", "normal or silent (read financial requests, never answer)")
	adminAddr := flag.String("admin", "", "serve the admin API (GET /ledger, /stats; POST /issuers/{name}/mode, /latency, /fault, /schedule) on this address, e.g. 127.0.0.1:9100; no authentication, keep it on loopback")
	flag.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprintf(out, "Usage of %s:\n", os.Args[0])
		flag.PrintDefaults()
		fmt.Fprint(out, configHelp)
	}
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
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["latency"] && set["latency-dist"] {
		log.Error("use --latency or --latency-dist, not both")
		return 2
	}
	var dist issuer.LatencyDist
	if set["latency-dist"] {
		if dist, err = issuer.ParseLatencyDist(*latencyDist); err != nil {
			log.Error("bad --latency-dist", zap.Error(err))
			return 2
		}
	}

	var running []*issuer.Issuer
	defer func() {
		for _, is := range running {
			if err := is.Close(); err != nil {
				log.Error("closing issuer", zap.String("issuer", is.Name()), zap.Error(err))
			}
		}
	}()
	for i, cfg := range cfgs {
		switch {
		case set["latency"]:
			cfg.Latency, cfg.LatencyDist = *latency, issuer.LatencyDist{}
		case set["latency-dist"]:
			cfg.Latency, cfg.LatencyDist = 0, dist
		}
		if *seed != 0 {
			cfg.Seed = *seed + uint64(i)
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

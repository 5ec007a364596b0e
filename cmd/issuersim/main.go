// Command issuersim runs emulated issuer approval hosts: the three demo
// issuers by default, or those of a YAML file, until SIGINT or SIGTERM.
// It also serves issuer.AdminHandler (ledger with masked PANs, counters,
// reset, mode, latency distribution, fault and fault schedule switches) on
// --admin, 127.0.0.1:9100 by default. issuersim --help prints the flags and
// the YAML layout (configHelp).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/cli"
	"github.com/kbpay/switch/simulator/issuer"
)

// configHelp is the --config YAML layout, printed by -h.
const configHelp = `
--config YAML (every key but name, addr and bins optional):

  issuers:
    - name: card-a
      addr: 127.0.0.1:9101
      addrs: [127.0.0.1:9111]   # more endpoints of this issuer (one ledger)
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

// usage is issuersim --help.
const usage = `issuersim: emulated issuer approval hosts for the switch.

Usage:
  issuersim [flags]          run until SIGINT or SIGTERM
  issuersim version          print version, commit and Go version
  issuersim help | --help    this text

Flags:
  --config FILE              issuers YAML, layout below (default: card-a, card-b and
                             prepaid on 127.0.0.1:9101-9103, BINs 9410, 9420, 9430)
  --admin ADDR               admin API address (default 127.0.0.1:9100; "off" disables):
                             GET /ledger, /stats, /issuers/{name}/approvals, /endpoints;
                             POST /reset, /issuers/{name}/reset (opening balances again),
                             /issuers/{name}/mode, /latency, /fault, /schedule,
                             /issuers/{name}/endpoints/{index|addr}/down, .../silent?on=true|false.
                             No authentication: keep it on loopback.
  --mode normal|silent       silent: read financial requests, never answer (default normal)
  --latency DURATION         fixed response delay for every issuer (overrides the config)
  --latency-dist SPEC        delay distribution for every issuer: kind,key=duration,...
                             fixed,value=20ms | uniform,min=5ms,max=50ms |
                             lognormal,median=20ms,p99=300ms[,max=2s] | pareto,median=20ms,p99=300ms
  --seed N                   seed of the random draws; issuer i gets N+i (default: the
                             config's, else time-based)
  --log-level LEVEL          debug, info, warn or error (default info)

Signals: SIGINT, SIGTERM close the issuers and exit 0.
Environment: none.
` + configHelp

// DefaultAdmin is the admin API's address unless --admin says otherwise;
// termsim run's scenarios expect it there.
const DefaultAdmin = "127.0.0.1:9100"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is issuersim; it returns the exit status (0 ok, 1 start-up problem,
// 2 usage or configuration error).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			if len(args) > 1 {
				return cli.Usagef(stderr, "issuersim version", "unexpected argument %q", args[1])
			}
			return cli.Version(stdout, "issuersim")
		case "help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	fs := flag.NewFlagSet("issuersim", flag.ContinueOnError)
	configPath := fs.String("config", "", "")
	latency := fs.Duration("latency", 0, "")
	latencyDist := fs.String("latency-dist", "", "")
	seed := fs.Uint64("seed", 0, "")
	modeName := fs.String("mode", "normal", "")
	adminAddr := fs.String("admin", DefaultAdmin, "")
	level := fs.String("log-level", "info", "")
	version := fs.Bool("version", false, "")
	if code, done := cli.Parse(fs, args, usage, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Usagef(stderr, "issuersim", "unknown command %q: want version or help", fs.Arg(0))
	}
	if *version {
		return cli.Version(stdout, "issuersim")
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "issuersim: "+format+"\n", a...)
		return code
	}
	mode, err := issuer.ParseMode(*modeName)
	if err != nil {
		return cli.Usagef(stderr, "issuersim", "--mode: %v", err)
	}
	cfgs := issuer.DefaultIssuers()
	if *configPath != "" {
		if cfgs, err = issuer.LoadConfig(*configPath); err != nil {
			return fail(2, "%v", err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["latency"] && set["latency-dist"] {
		return cli.Usagef(stderr, "issuersim", "use --latency or --latency-dist, not both")
	}
	var dist issuer.LatencyDist
	if set["latency-dist"] {
		if dist, err = issuer.ParseLatencyDist(*latencyDist); err != nil {
			return cli.Usagef(stderr, "issuersim", "--latency-dist: %v", err)
		}
	}
	log, err := cli.NewLogger(*level)
	if err != nil {
		return cli.Usagef(stderr, "issuersim", "--log-level: %v", err)
	}
	defer log.Sync() //nolint:errcheck // stderr sync fails on some terminals

	var running []*issuer.Issuer
	defer func() {
		for _, is := range running {
			if err := is.Close(); err != nil {
				log.Warn("closing issuer", zap.String("issuer", is.Name()), zap.Error(err))
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
			return fail(2, "configuring issuer %s: %v", cfg.Name, err)
		}
		is.SetMode(mode)
		if err := is.Start(); err != nil {
			return fail(1, "starting issuer %s: %v", cfg.Name, err)
		}
		running = append(running, is)
	}
	if *adminAddr != "off" && *adminAddr != "" {
		stopAdmin, err := serveAdmin(*adminAddr, running, log)
		if err != nil {
			return fail(1, "%v", err)
		}
		defer stopAdmin()
	}
	<-ctx.Done()
	log.Info("signal received, shutting down")
	return 0
}

// serveAdmin serves issuer.AdminHandler on addr until the returned stop.
func serveAdmin(addr string, running []*issuer.Issuer, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w (--admin off disables it)", err)
	}
	srv := &http.Server{Handler: issuer.AdminHandler(running), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin API stopped", zap.Error(err))
		}
	}()
	log.Info("admin API listening", zap.String("addr", ln.Addr().String()))
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

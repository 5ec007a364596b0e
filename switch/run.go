package payswitch

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/datadir"
)

// NewLogger returns the production JSON logger at the given level (zap's
// sampling keeps a flood of identical lines from costing throughput).
func NewLogger(level string) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = lvl
	return zc.Build()
}

// Main is switchd: parse flags, load and check the configuration (-t
// checks and exits), run until SIGINT/SIGTERM, then drain; `switchd settle`
// writes settlement files instead. It returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "settle" {
		return settleMain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "keys" {
		return KeysMain(args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("switchd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (default: built-in demo configuration)")
	check := fs.Bool("t", false, "check the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "switchd: %v\n", err)
			return 1
		}
	}
	if *check {
		return checkConfig(cfg, stdout, stderr)
	}
	log, err := NewLogger(cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "switchd: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sw, err := New(cfg, log, reg, WithConfigFile(*path))
	if err != nil {
		log.Error("switchd not started", zap.Error(err))
		if errors.Is(err, datadir.ErrInUse) {
			fmt.Fprintf(stderr, "switchd: %v\n", err) // plainly, for whoever started it
		}
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sw.Start(ctx); err != nil {
		log.Error("switchd not started", zap.Error(err))
		_ = sw.Shutdown(context.Background())
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			// Logged and counted by the switch (switch_config_reloads_total).
			_, _ = sw.ReloadFile(context.Background())
		}
	}
	log.Info("signal received, draining", zap.Duration("drain_timeout", cfg.DrainTimeout))
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := sw.Shutdown(dctx); err != nil {
		log.Warn("shutdown", zap.Error(err))
	}
	return 0
}

// checkConfig is switchd -t past loading: the production checks New makes
// (config.CheckProduction) and the admin certificate, each problem on its
// own line; exit 1 when there is one.
func checkConfig(cfg config.Config, stdout, stderr io.Writer) int {
	err := cfg.CheckProduction(os.Getenv)
	if _, terr := adminTLS(cfg.Admin); terr != nil {
		err = errors.Join(err, terr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchd: configuration not usable: %v\n", err)
		return 1
	}
	mode := "production mode"
	if dev, _ := cfg.DevelopmentMode(os.Getenv); dev {
		mode = "development mode: demo admin token and demo keys allowed"
	}
	fmt.Fprintf(stdout, "switchd: configuration OK (%d listeners, %d routes; %s)\n", len(cfg.Listeners), len(cfg.Routes), mode)
	return 0
}

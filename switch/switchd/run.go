// Package switchd is the switchd command line: run the switch, -t, settle, migrate, keys, version.
package switchd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/cli"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/admin"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/keyring"
	"github.com/kbpay/switch/switch/txnlog"
)

// NewLogger returns the production JSON logger at the given level, with
// ISO 8601 times and no stack traces on errors (cli.NewLogger); the one
// line per transaction is never sampled away.
func NewLogger(level string) (*zap.Logger, error) { return cli.NewLogger(level, txnlog.Message) }

// Main is switchd: parse flags, load and check the configuration (-t
// checks and exits), run until SIGINT/SIGTERM, then drain; `switchd settle`
// writes settlement files instead, `switchd migrate` applies the store's
// schema migrations. It returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "settle":
			return settleMain(args[1:], stdout, stderr)
		case "keys":
			return keyring.Main(args[1:], os.Stdin, stdout, stderr)
		case "version":
			if code, done := cli.NoArgs(flagSetOf("switchd version", args[1:]), stderr); done {
				return code
			}
			return cli.Version(stdout, "switchd")
		case "help":
			fmt.Fprintln(stdout, switchdUsage)
			return 0
		}
	}
	if len(args) > 0 && args[0] == "migrate" {
		return migrateMain(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("switchd", flag.ContinueOnError)
	path := fs.String("config", "", "")
	check := fs.Bool("t", false, "")
	version := fs.Bool("version", false, "")
	if code, done := cli.Parse(fs, args, switchdUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Usagef(stderr, "switchd", "unknown command %q: want settle, keys, migrate, version or help", fs.Arg(0))
	}
	if *version {
		return cli.Version(stdout, "switchd")
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
	log.Info("go runtime", applyRuntime(cfg.Runtime, os.Getenv, runtimeDebug)...)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sw, err := payswitch.New(cfg, log, reg, payswitch.WithConfigFile(*path))
	if err != nil {
		// A configuration or start-up problem: plainly, for whoever started it.
		fmt.Fprintf(stderr, "switchd: not started: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP is caught before Start: once the admin API answers, a reload
	// signal must not kill the process (Go's default for SIGHUP).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := sw.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "switchd: not started: %v\n", err)
		_ = sw.Shutdown(context.Background())
		return 1
	}
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			// Logged and counted by the switch (payswitch_config_reloads_total).
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

// checkConfig is switchd -t past loading: everything that can be known
// without traffic. Problems (exit 1): the production checks New makes
// (config.CheckProduction), the admin certificate, routes without a zone
// PIN key while listeners take PINs, and key labels the HSM lacks or holds
// with the wrong usage or cipher (the HSM is opened without changing it).
// Warnings (exit 0): listeners without a terminal PIN key.
func checkConfig(cfg config.Config, stdout, stderr io.Writer) int {
	err := cfg.CheckProduction(os.Getenv)
	if _, terr := admin.TLSConfig(cfg.Admin); terr != nil {
		err = errors.Join(err, terr)
	}
	pinProblems, warnings := cfg.PINProblems()
	err = errors.Join(append([]error{err}, pinProblems...)...)
	err = errors.Join(err, keyring.CheckConfigured(context.Background(), cfg, os.Getenv))
	for _, w := range warnings {
		fmt.Fprintf(stderr, "switchd: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchd: configuration not usable:\n%v\n", indent(err.Error()))
		return 1
	}
	mode := "production mode"
	if dev, _ := cfg.DevelopmentMode(os.Getenv); dev {
		mode = "development mode: demo admin token and demo keys allowed"
	}
	fmt.Fprintf(stdout, "switchd: configuration OK (%d listeners, %d routes; %s)\n", len(cfg.Listeners), len(cfg.Routes), mode)
	return 0
}

// indent puts two spaces before every line of s.
func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// flagSetOf parses args with no flags defined (for subcommands that take
// none), so stray arguments are reported.
func flagSetOf(name string, args []string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_ = fs.Parse(args)
	return fs
}

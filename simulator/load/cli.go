package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap/zapcore"

	"github.com/kbpay/switch/simulator/terminal"
)

// Name and Summary describe the command for termsim's command list.
const (
	Name    = "load"
	Summary = "load test: open loop at --rate (or --closed N), HDR latency summary, --report DIR"
)

// Exit codes of termsim load.
const (
	ExitOK        = terminal.ExitOK         // every request answered (declines included)
	ExitFailures  = terminal.ExitMismatch   // some requests timed out, failed or were never sent
	ExitUsage     = terminal.ExitUsage      // bad command line or configuration
	ExitNoConnect = terminal.ExitNoResponse // the target could not be reached
)

// Main runs `termsim load` (args without the command name) and returns the
// exit code. The summary goes to stdout; the progress line, when stderr is
// a terminal, to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("termsim load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                   Config
		mix, pans, tokens     string
		reportDir             string
		genCards              int
		quiet, verbose, jsonO bool
	)
	d := terminal.DefaultOptions()
	fs.StringVar(&cfg.Addr, "switch", d.Addr, "target switch `address` host:port (loopback only, see --allow-remote)")
	fs.StringVar(&cfg.Spec, "spec", d.Spec, "message `dialect`: built-in name or JSON spec file")
	fs.StringVar(&cfg.Header, "header", d.Header, "length `header`: binary2, ascii4 or bcd2")
	fs.StringVar(&cfg.MerchantID, "merchant", d.MerchantID, "merchant `ID` (DE 42)")
	fs.StringVar(&cfg.TerminalPrefix, "terminal-prefix", DefaultTerminalPrefix, "terminal ID `prefix`; IDs are the prefix and a number, 8 characters (LT000001)")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target outside 127.0.0.0/8 and ::1. Our workplace FORBIDS load against remote systems: never use it there")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: target `arrivals` per second (latency from each intended send time)")
	fs.StringVar(&cfg.Arrivals, "arrivals", Uniform, "open-loop arrival `process`: uniform or poisson")
	fs.IntVar(&cfg.Closed, "closed", 0, "closed loop instead: `N` requests in flight, each sent when the previous is answered (finds the maximum)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run `length`, at most 1h (required unless --count)")
	fs.Int64Var(&cfg.Count, "count", 0, "stop after `N` requests")
	fs.IntVar(&cfg.Terminals, "terminals", DefaultTerminals, "`number` of terminal connections, each with its own terminal ID")
	fs.BoolVar(&cfg.OneOutstanding, "one-outstanding", false, "one request in flight per terminal (POS); default: many per terminal (VAN link)")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", DefaultMaxInFlight, "open loop with VAN links: cap on requests in flight (`N`); waits count in latency")
	fs.StringVar(&mix, "mix", "purchase=100", "request `mix`: purchase=90,cancel=8,refund=2 (cancels and refunds name earlier approved sales of the same terminal)")
	fs.StringVar(&pans, "pans", "", "card numbers, one per line (`FILE`); default the demo cards")
	fs.StringVar(&tokens, "tokens", "", "tokens instead of card numbers, one per line (`FILE`)")
	fs.IntVar(&genCards, "cards", 0, "generate `N` Luhn-valid cards under the demo BINs 9410/9420/9430 (each has its own demo balance)")
	fs.Int64Var(&cfg.AmountMin, "amount-min", DefaultAmountMin, "smallest purchase `amount` (minor units)")
	fs.Int64Var(&cfg.AmountMax, "amount-max", DefaultAmountMax, "largest purchase `amount` (minor units)")
	fs.StringVar(&cfg.Currency, "currency", terminal.DefaultCurrency, "ISO 4217 numeric `currency` (DE 49)")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "per-request response `timeout`; a purchase that times out gets a net cancel (0400)")
	fs.BoolVar(&cfg.NoNetCancel, "no-net-cancel", false, "do not send a 0400 for purchases that timed out")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random `seed` for mix, amounts and Poisson gaps (0: random)")
	var switchMetrics string
	fs.StringVar(&switchMetrics, "switch-metrics", "auto", "switch admin `address` whose /metrics split the time into switch and issuer; auto: 127.0.0.1:8580 when --switch is the demo address, else none; \"\": none")
	fs.StringVar(&reportDir, "report", "", "write report.json and a self-contained report.html into `DIR`")
	fs.BoolVar(&jsonO, "json", false, "print the report as JSON on stdout instead of the text summary")
	fs.BoolVar(&quiet, "quiet", false, "no progress line")
	fs.BoolVar(&verbose, "v", false, "log connection events to stderr")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: termsim load --rate R --duration D [--terminals N] [--mix purchase=90,cancel=8,refund=2] [flags]")
		fmt.Fprintln(w, "       termsim load --closed N --duration D [flags]")
		fmt.Fprintln(w, "\nOpen loop: requests are due at the target rate and their latency counts from")
		fmt.Fprintln(w, "when they were due, so a stalled target shows in the percentiles. Closed loop:")
		fmt.Fprintln(w, "N requests in flight back-to-back, to find the maximum throughput. Targets")
		fmt.Fprintln(w, "only 127.0.0.0/8 and ::1 unless --allow-remote. Card numbers are printed")
		fmt.Fprintln(w, "masked 6+4 only.")
		fmt.Fprintln(w, "\nExit codes: 0 every request answered, 1 timeouts, errors or unsent requests,")
		fmt.Fprintln(w, "2 usage error, 3 the target could not be reached.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := terminal.ParseFlags(fs, args); done {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "termsim load: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'termsim help load' for the flags.")
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	if switchMetrics == "auto" {
		switchMetrics = ""
		if cfg.Addr == d.Addr {
			switchMetrics = DemoSwitchAdmin
		}
	}
	if switchMetrics != "" {
		cfg.SwitchMetrics = "http://" + strings.TrimPrefix(switchMetrics, "http://") + "/metrics"
	}
	m, err := ParseMix(mix)
	if err != nil {
		return usageErr("%v", err)
	}
	cfg.Mix = m
	sources := 0
	for _, s := range []bool{pans != "", tokens != "", genCards != 0} {
		if s {
			sources++
		}
	}
	if sources > 1 {
		return usageErr("give one of --pans, --tokens and --cards")
	}
	switch {
	case pans != "":
		if cfg.Cards, err = ReadCards(pans); err != nil {
			return usageErr("%v", err)
		}
	case tokens != "":
		if cfg.Cards, err = ReadCards(tokens); err != nil {
			return usageErr("%v", err)
		}
		cfg.CardsAreTokens = true
	case genCards < 0 || genCards > 1_000_000:
		return usageErr("--cards %d: give 1..1000000", genCards)
	case genCards > 0:
		cfg.Cards = GenerateCards(genCards, DemoBINs)
	}
	if cfg.Duration <= 0 && cfg.Count <= 0 {
		return usageErr("--duration is required (at most %s), or --count: a load run must end by itself", MaxDuration)
	}
	if cfg.Rate == 0 && cfg.Closed == 0 {
		return usageErr("give --rate R (open loop) or --closed N (closed loop)")
	}
	if cfg.Timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	level := zapcore.ErrorLevel
	if verbose {
		level = zapcore.InfoLevel
	}
	cfg.Logger = terminal.ConsoleLogger(stderr, level)
	defer func() { _ = cfg.Logger.Sync() }()
	if !quiet && IsTerminal(stderr) {
		cfg.Progress = stderr
	}

	rep, err := Run(ctx, cfg)
	switch {
	case errors.Is(err, ErrConfig), errors.Is(err, ErrRemoteTarget):
		return usageErr("%v", err)
	case err != nil:
		fmt.Fprintf(stderr, "termsim load: %v\n", err)
		return ExitNoConnect
	}
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "Interrupted before the end of the run.")
		fmt.Fprintln(stderr, "termsim load: interrupted; summary of what ran:")
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stderr, "termsim load: %s\n", w)
	}
	if jsonO {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "termsim load: writing summary: %v\n", err)
	}
	if reportDir != "" {
		if err := rep.WriteFiles(reportDir); err != nil {
			fmt.Fprintf(stderr, "termsim load: %v\n", err)
			return ExitFailures
		}
		fmt.Fprintf(stderr, "termsim load: report written to %s (report.json, report.html)\n", reportDir)
	}
	if rep.Timeouts > 0 || rep.Errors.Total > 0 || rep.Unsent > 0 {
		return ExitFailures
	}
	return ExitOK
}

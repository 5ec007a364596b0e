package terminal

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/internal/cli"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// Exit codes of the termsim command.
const (
	ExitOK         = 0 // a response arrived (and matched --expect)
	ExitMismatch   = 1 // a response arrived but DE 39 differs from --expect
	ExitUsage      = 2 // bad command line
	ExitNoResponse = 3 // timeout or connection error: no response arrived
)

// command is one termsim subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands; run and load slot in here.
func commands() []command {
	return []command{
		{"pay", "send one 0200 purchase and print the response", RunPay},
		{"ready", "wait until a switch is ready and every issuer route is signed on", RunReady},
		{"van", "a VAN: few signed-on links (TLS, mutual TLS) carrying many interleaved purchases", RunVAN},
		{"run", "run scenario files (YAML): pass/fail table, JUnit XML, exit 1 on any failure", runScenarios},
		{"token", "provision and manage tokens (same commands as tokenctl)", tokenapi.CtlMain},
		// simulator/load builds on this package, so cmd/termsim dispatches load itself.
		{"load", "load test: open loop at --rate or --closed N; HDR latency summary, --report DIR", func(_ context.Context, _ []string, _, stderr io.Writer) int {
			fmt.Fprintln(stderr, "termsim load: provided by the termsim binary (cmd/termsim dispatches it to simulator/load)")
			return ExitUsage
		}},
	}
}

// Main runs the termsim command line (args without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "termsim: no command given (termsim --help lists the commands)")
		return ExitUsage
	}
	switch args[0] {
	case "version", "--version", "-version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "termsim version: unexpected argument %q\n", args[1])
			return ExitUsage
		}
		return cli.Version(stdout, "termsim")
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					return c.run(ctx, []string{"-h"}, stdout, stderr)
				}
			}
		}
		printUsage(stdout)
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "termsim: unknown command %q (termsim --help lists the commands)\n", args[0])
	return ExitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "termsim simulates POS terminals talking ISO 8583 to the switch.")
	fmt.Fprintln(w, "\nUsage:\n  termsim <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  version  print version, commit and Go version")
	fmt.Fprintln(w, "  help   show this help, or a command's flags and defaults: termsim help <command>")
	fmt.Fprintln(w, "\nDefaults: switch 127.0.0.1:8583, terminal TERM0001, merchant MERCHANT0000001;")
	fmt.Fprintln(w, "admin APIs 127.0.0.1:8580 (switch) and 127.0.0.1:9100 (issuersim).")
	fmt.Fprintln(w, "\nEnvironment: SWITCH_ADMIN_ADDR, SWITCH_ADMIN_TOKEN (switch admin API for")
	fmt.Fprintln(w, "tokens and reconciliation; default the demo address and token).")
	fmt.Fprintln(w, "\nSignals: SIGINT or SIGTERM stop a run or a load test; a load test still")
	fmt.Fprintln(w, "writes its report for what ran.")
	fmt.Fprintln(w, "\nExit codes: 0 response received, 1 response code differs from --expect")
	fmt.Fprintln(w, "(run: a scenario failed), 2 usage error, 3 no response (timeout or connection error).")
}

// linkFlags are the flags every subcommand that talks to the switch takes.
type linkFlags struct {
	addr, spec, header, terminal, merchant string
	timeout                                time.Duration
	verbose                                bool
}

func (l *linkFlags) register(fs *flag.FlagSet) {
	d := DefaultOptions()
	fs.StringVar(&l.addr, "switch", d.Addr, "switch `address` host:port")
	fs.StringVar(&l.spec, "spec", d.Spec, "message `dialect`: built-in name or JSON spec file")
	fs.StringVar(&l.header, "header", d.Header, "`framing`: binary2, binary4, ascii4 or bcd2, optionally +tpdu")
	fs.StringVar(&l.terminal, "terminal", d.TerminalID, "terminal `ID` (DE 41, up to 8 characters)")
	fs.StringVar(&l.merchant, "merchant", d.MerchantID, "merchant `ID` (DE 42, up to 15 characters)")
	fs.DurationVar(&l.timeout, "timeout", d.Timeout, "connect and response `timeout`")
	fs.BoolVar(&l.verbose, "v", false, "log connection events to stderr")
}

func (l *linkFlags) options(stderr io.Writer) Options {
	level := zapcore.WarnLevel
	if l.verbose {
		level = zapcore.DebugLevel
	}
	return Options{
		Addr:       l.addr,
		Spec:       l.spec,
		Header:     l.header,
		TerminalID: l.terminal,
		MerchantID: l.merchant,
		Timeout:    l.timeout,
		Logger:     ConsoleLogger(stderr, level),
	}
}

// RunPay is `termsim pay`: it sends one 0200 purchase and prints the
// response. It returns ExitOK when a response arrived (and DE 39 equals
// --expect when given), ExitMismatch when DE 39 differs from --expect,
// ExitUsage on a bad command line and ExitNoResponse when no response
// arrived. The PAN is printed masked only.
func RunPay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("termsim pay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		link   linkFlags
		p      Purchase
		expect string
	)
	var token string
	fs.StringVar(&p.PAN, "pan", "", "card `number` (this or --token is required; printed masked)")
	fs.StringVar(&token, "token", "", "pay with a `token` or one-time card number instead of a PAN")
	fs.Int64Var(&p.Amount, "amount", 0, "amount in minor units, KRW won (required)")
	fs.StringVar(&p.Expiry, "expiry", "", "card expiry `YYMM` (DE 14, optional)")
	fs.StringVar(&p.Currency, "currency", DefaultCurrency, "ISO 4217 numeric `currency` (DE 49)")
	fs.StringVar(&p.POSEntryMode, "entry-mode", DefaultPOSEntryMode, "POS entry `mode` (DE 22)")
	fs.StringVar(&expect, "expect", "", "exit 1 unless DE 39 equals this response `code`")
	var keys pinFlags
	keys.register(fs, &p)
	link.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: termsim pay --pan PAN --amount AMOUNT [--pin PIN] [flags]\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := ParseFlags(fs, args); done {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "termsim pay: "+format+"\n", a...)
		fs.Usage()
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	if token != "" {
		if p.PAN != "" {
			return usageErr("give --pan or --token, not both")
		}
		p.PAN = token
		if p.PIN != "" && p.PINPAN == "" {
			fmt.Fprintln(stderr, "termsim pay: warning: the PIN block is bound to the token; the switch expects it bound to the real card (give --pin-pan)")
		}
	}
	if p.PAN == "" || p.Amount == 0 {
		return usageErr("--pan (or --token) and --amount are required")
	}
	pinKey, bdk, err := keys.parse(fs, p)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := p.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if expect != "" && len(expect) != 2 {
		return usageErr("--expect %q is not a 2-character response code", expect)
	}
	if link.timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	opts := link.options(stderr)
	opts.PINKey, opts.DUKPTBDK = pinKey, bdk
	defer func() { _ = opts.Logger.Sync() }()

	client, err := Dial(ctx, opts)
	if err != nil {
		if errors.Is(err, ErrConfig) {
			return usageErr("%v", err)
		}
		fmt.Fprintf(stderr, "termsim pay: no response: cannot connect to switch at %s: %v\n", link.addr, err)
		return ExitNoResponse
	}
	defer func() {
		if err := client.Close(); err != nil {
			opts.Logger.Warn("closing connection", zap.Error(err))
		}
	}()
	res, err := client.Purchase(ctx, p)
	if err != nil {
		if errors.Is(err, ErrInvalidPurchase) {
			return usageErr("%v", err)
		}
		fmt.Fprintf(stderr, "termsim pay: no response from switch at %s: %v\n", link.addr, err)
		return ExitNoResponse
	}
	printResult(stdout, res)
	if expect != "" && res.ResponseCode != expect {
		fmt.Fprintf(stderr, "termsim pay: expected DE 39 %s (%s), got %s (%s)\n",
			expect, ResponseMeaning(expect), orDash(res.ResponseCode), res.Meaning())
		return ExitMismatch
	}
	return ExitOK
}

// pinFlags are termsim pay's PIN entry flags. Their values (PIN, keys) are
// never printed, not even as flag defaults.
type pinFlags struct {
	pinKey, bdk string
	dukpt       bool
}

func (f *pinFlags) register(fs *flag.FlagSet, p *Purchase) {
	fs.StringVar(&p.PIN, "pin", "", "cardholder `PIN`, 4-12 digits: sends DE 52 (ISO 9564 format 0; never printed)")
	fs.StringVar(&p.PINPAN, "pin-pan", "", "card `number` the PIN block is bound to (default the --pan; with --token give the real card)")
	fs.StringVar(&f.pinKey, "pin-key", "", "static terminal PIN key in `hex`, 16 or 24 bytes (default the demo TPK)")
	fs.BoolVar(&f.dukpt, "dukpt", false, "encrypt the PIN under TDES DUKPT with the demo BDK (KSN in DE 62)")
	fs.StringVar(&f.bdk, "bdk", "", "TDES DUKPT base derivation key in `hex`, 16 bytes (implies --dukpt)")
}

// parse checks the PIN flags and returns Options.PINKey and
// Options.DUKPTBDK (nil for the defaults: static demo TPK, no DUKPT).
// Errors never show the PIN or a key.
func (f *pinFlags) parse(fs *flag.FlagSet, p Purchase) (pinKey, bdk []byte, err error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	set["dukpt"] = f.dukpt // --dukpt=false is as good as absent
	if p.PIN == "" {
		for _, name := range []string{"pin-pan", "pin-key", "dukpt", "bdk"} {
			if set[name] {
				return nil, nil, fmt.Errorf("--%s needs --pin", name)
			}
		}
		if set["pin"] {
			return nil, nil, errors.New("--pin is empty")
		}
		return nil, nil, nil
	}
	if len(p.PIN) < 4 || len(p.PIN) > 12 || !isDigits(p.PIN) {
		return nil, nil, errors.New("--pin is not 4-12 digits")
	}
	if set["pin-key"] && (set["dukpt"] || set["bdk"]) {
		return nil, nil, errors.New("give --pin-key (static key) or --dukpt/--bdk, not both")
	}
	if set["pin-key"] {
		if pinKey, err = decodeKey("--pin-key", f.pinKey, 16, 24); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case set["bdk"]:
		if bdk, err = decodeKey("--bdk", f.bdk, 16); err != nil {
			return nil, nil, err
		}
	case set["dukpt"]:
		bdk = devkeys.Bytes(devkeys.BDKHex)
	}
	return pinKey, bdk, nil
}

// decodeKey decodes a hex key flag of one of the given byte lengths.
func decodeKey(name, h string, lengths ...int) ([]byte, error) {
	k, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid hex", name)
	}
	if !slices.Contains(lengths, len(k)) {
		want := make([]string, len(lengths))
		for i, n := range lengths {
			want[i] = fmt.Sprint(n)
		}
		return nil, fmt.Errorf("%s must be %s bytes (%d hex digits given)", name, strings.Join(want, " or "), len(h))
	}
	return k, nil
}

// printResult writes the response one field per line.
func printResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "MTI      %s\n", orDash(r.MTI))
	fmt.Fprintf(w, "DE 39    %s %s\n", orDash(r.ResponseCode), r.Meaning())
	fmt.Fprintf(w, "DE 38    %s\n", orDash(r.ApprovalCode))
	fmt.Fprintf(w, "DE 37    %s\n", orDash(r.RRN))
	fmt.Fprintf(w, "DE 11    %s\n", orDash(r.STAN))
	fmt.Fprintf(w, "PAN      %s\n", orDash(r.MaskedPAN))
	fmt.Fprintf(w, "Latency  %s\n", r.Latency.Round(time.Microsecond))
	if want, _ := specs.ResponseMTI(specs.MTIFinancialRequest); r.MTI != want {
		fmt.Fprintf(w, "warning: response MTI %s, expected %s\n", orDash(r.MTI), want)
	}
}

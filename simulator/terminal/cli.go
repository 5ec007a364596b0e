package terminal

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kbpay/switch/specs"
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
	}
}

// Main runs the termsim command line (args without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return ExitUsage
	}
	switch args[0] {
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
	fmt.Fprintf(stderr, "termsim: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return ExitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "termsim simulates POS terminals talking ISO 8583 to the switch.")
	fmt.Fprintln(w, "\nUsage:\n  termsim <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  help   show this help, or a command's flags: termsim help <command>")
	fmt.Fprintln(w, "\nExit codes: 0 response received, 1 response code differs from --expect,")
	fmt.Fprintln(w, "2 usage error, 3 no response (timeout or connection error).")
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
	fs.StringVar(&l.header, "header", d.Header, "length `header`: binary2, ascii4 or bcd2")
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
	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), level)
	return Options{
		Addr:       l.addr,
		Spec:       l.spec,
		Header:     l.header,
		TerminalID: l.terminal,
		MerchantID: l.merchant,
		Timeout:    l.timeout,
		Logger:     zap.New(core),
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
	fs.StringVar(&p.PAN, "pan", "", "card `number` or token (required; printed masked)")
	fs.Int64Var(&p.Amount, "amount", 0, "amount in minor units, KRW won (required)")
	fs.StringVar(&p.Expiry, "expiry", "", "card expiry `YYMM` (DE 14, optional)")
	fs.StringVar(&p.Currency, "currency", DefaultCurrency, "ISO 4217 numeric `currency` (DE 49)")
	fs.StringVar(&p.POSEntryMode, "entry-mode", DefaultPOSEntryMode, "POS entry `mode` (DE 22)")
	fs.StringVar(&expect, "expect", "", "exit 1 unless DE 39 equals this response `code`")
	link.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: termsim pay --pan PAN --amount AMOUNT [flags]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "termsim pay: "+format+"\n", a...)
		fs.Usage()
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	if p.PAN == "" || p.Amount == 0 {
		return usageErr("--pan and --amount are required")
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

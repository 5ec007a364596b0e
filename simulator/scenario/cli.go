package scenario

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// Exit codes of `termsim run`.
const (
	ExitPassed = 0 // every step passed (or was skipped)
	ExitFailed = 1 // at least one step failed
	ExitUsage  = 2 // bad command line or scenario file
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Command is `termsim run FILE|DIR... [flags]`: it loads the scenarios,
// runs them, prints a pass/fail table and the summary line, writes JUnit
// XML with --junit, and returns ExitFailed when any step failed.
// cmd/termsim registers it as terminal.RunScenarios.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("termsim run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := terminal.DefaultOptions()
	var (
		o                         Options
		varFiles, varArgs         listFlag
		skip, junit, only         string
		macKey, pinKey, bdk       string
		verbose                   bool
		envAdmin, envBearer       = os.Getenv(tokenapi.EnvAdmin), os.Getenv(tokenapi.EnvBearer)
		defaultBearer             = envBearer
		timeout                   time.Duration
		spec, header, term, merch string
	)
	if defaultBearer == "" {
		defaultBearer = tokenapi.DemoBearer
	}
	fs.StringVar(&o.Switch, "switch", d.Addr, "switch `address` host:port (a scenario's switch: overrides it)")
	fs.StringVar(&spec, "spec", d.Spec, "message `dialect`: built-in name or JSON spec file")
	fs.StringVar(&header, "header", d.Header, "length `header`: binary2, ascii4 or bcd2")
	fs.StringVar(&term, "terminal", d.TerminalID, "default terminal `ID` (DE 41)")
	fs.StringVar(&merch, "merchant", d.MerchantID, "default merchant `ID` (DE 42)")
	fs.DurationVar(&timeout, "timeout", d.Timeout, "POS response `timeout`; no answer in time sends the automatic net cancel")
	fs.Var(&varFiles, "vars", "KEY=VALUE `file` of variables (repeatable; default: the *.env files beside the scenarios)")
	fs.Var(&varArgs, "var", "one variable `KEY=VALUE` (repeatable; overrides --vars)")
	if envAdmin == "" {
		envAdmin = DemoSwitchAdmin
	}
	fs.StringVar(&o.IssuerAdmin, "issuer-admin", DemoIssuerAdmin, "issuer emulator admin `address` (\"\": none); scenarios that need it are skipped when nothing answers there")
	fs.StringVar(&o.TokenAdmin, "admin", envAdmin, "switch admin `address` for the token API ($"+tokenapi.EnvAdmin+"; \"\": none); token scenarios are skipped when nothing answers there")
	fs.StringVar(&o.Bearer, "bearer", defaultBearer, "token API bearer `token` ($"+tokenapi.EnvBearer+", else the demo token)")
	fs.StringVar(&skip, "skip-requires", "", "comma-separated `requirements` to treat as unmet (issuer_admin, token_api, variables)")
	fs.StringVar(&junit, "junit", "", "write JUnit XML to `file`")
	fs.StringVar(&only, "run", "", "run only scenarios whose name matches this `regexp`")
	fs.StringVar(&macKey, "mac-key", "", "terminal MAC key in `hex` (16 bytes, retail MAC): sets ${mac_key} for keyed scenarios")
	fs.StringVar(&pinKey, "pin-key", "", "static terminal PIN key in `hex` (default the demo TPK)")
	fs.StringVar(&bdk, "bdk", "", "TDES DUKPT BDK in `hex` for every scenario (default: static PIN key)")
	fs.BoolVar(&verbose, "v", false, "log terminal connection events to stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: termsim run FILE|DIR... [flags]\n\nRuns scenario files (YAML; a directory runs its *.yaml in name order), prints")
		fmt.Fprintln(fs.Output(), "a pass/fail table and \"N passed, M failed\"; exit 0 when nothing failed, 1 on a")
		fmt.Fprintln(fs.Output(), "failure, 2 on a usage or file error. Format: simulator/scenarios/README.md.\n\nFlags:")
		fs.PrintDefaults()
	}
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitPassed
		}
		return ExitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "termsim run: "+format+"\n", a...)
		return ExitUsage
	}
	if len(paths) == 0 {
		fs.Usage()
		return usage("give at least one scenario file or directory")
	}
	if timeout <= 0 {
		return usage("--timeout must be positive")
	}
	o.Spec, o.Header, o.TerminalID, o.MerchantID, o.Timeout = spec, header, term, merch, timeout
	o.Vars = map[string]string{}
	if len(varFiles) == 0 {
		varFiles = VarFilesBeside(paths)
		for _, f := range varFiles {
			fmt.Fprintf(stderr, "termsim run: variables from %s\n", f)
		}
	}
	for _, f := range varFiles {
		m, err := LoadVars(f)
		if err != nil {
			return usage("%v", err)
		}
		for k, v := range m {
			o.Vars[k] = v
		}
	}
	for _, kv := range varArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !identRE.MatchString(k) {
			return usage("--var %q is not KEY=VALUE", kv)
		}
		o.Vars[strings.ToLower(k)] = v
	}
	if macKey != "" {
		if b, err := hex.DecodeString(macKey); err != nil || len(b) != 16 {
			return usage("--mac-key must be 16 bytes in hex")
		}
		o.Vars["mac_key"] = macKey
	}
	if pinKey != "" {
		if o.PINKey, err = hex.DecodeString(pinKey); err != nil || (len(o.PINKey) != 16 && len(o.PINKey) != 24) {
			return usage("--pin-key must be 16 or 24 bytes in hex")
		}
	}
	if bdk != "" {
		if o.DUKPTBDK, err = hex.DecodeString(bdk); err != nil || len(o.DUKPTBDK) != 16 {
			return usage("--bdk must be 16 bytes in hex")
		}
	}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.Skip = append(o.Skip, s)
		}
	}
	scenarios, err := Load(paths...)
	if err != nil {
		return usage("%v", err)
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			return usage("--run: %v", err)
		}
		kept := scenarios[:0]
		for _, sc := range scenarios {
			if re.MatchString(sc.Name) {
				kept = append(kept, sc)
			}
		}
		if scenarios = kept; len(scenarios) == 0 {
			return usage("--run %q matches no scenario", only)
		}
	}
	if verbose {
		o.Logger = terminal.ConsoleLogger(stderr, zapcore.DebugLevel)
		defer func() { _ = o.Logger.Sync() }()
	}
	table := NewTable(stdout, scenarios)
	o.OnStep = table.Row
	rep := Run(ctx, scenarios, o)
	fmt.Fprintln(stdout, rep.Summary())
	if junit != "" {
		if err := WriteJUnitFile(junit, rep); err != nil {
			fmt.Fprintf(stderr, "termsim run: %v\n", err)
			return ExitFailed
		}
	}
	if rep.Failed() {
		return ExitFailed
	}
	return ExitPassed
}

// parseInterspersed parses flags that may come before, between and after
// the positional arguments (`termsim run DIR --vars FILE`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// After "--" everything is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

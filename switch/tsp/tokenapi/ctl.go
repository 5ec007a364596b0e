package tokenapi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kbpay/switch/internal/cli"
)

// Environment variables tokenctl reads when flags are not given.
const (
	EnvAdmin  = "SWITCH_ADMIN_ADDR"
	EnvBearer = "SWITCH_ADMIN_TOKEN"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// ctlUsage is tokenctl --help.
const ctlUsage = `tokenctl: issue and manage tokens through switchd's provisioning API.

Usage: tokenctl [--admin ADDR] [--bearer TOKEN] COMMAND
  issue --pan PAN --expiry YYMM [--kind device|one-time] [--merchant ID ...] [--entry-mode NN ...]
  show TOKEN        status: active, suspended, deleted, used (a consumed one-time token) or expired
  suspend TOKEN | resume TOKEN | delete TOKEN
  version           print version, commit and Go version

Flags and environment:
  --admin ADDR    switch admin address (default $SWITCH_ADMIN_ADDR, else 127.0.0.1:8580)
  --bearer TOKEN  bearer token (default $SWITCH_ADMIN_TOKEN, else the development token demo-admin-token)

Output is the API's JSON. Exit status: 0 ok, 1 the API refused, 2 usage, 3 unreachable.`

// CtlMain is tokenctl: issue|show|suspend|resume|delete against the
// provisioning API. It prints the API's JSON on stdout and returns the exit
// code (0 ok, 1 API refused, 2 usage, 3 unreachable).
func CtlMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tokenctl", flag.ContinueOnError)
	admin := fs.String("admin", envOr(EnvAdmin, "127.0.0.1:8580"), "switch admin address")
	bearer := fs.String("bearer", envOr(EnvBearer, DemoBearer), "provisioning API bearer token")
	version := fs.Bool("version", false, "")
	if code, done := cli.Parse(fs, args, ctlUsage, stdout, stderr); done {
		return code
	}
	rest := fs.Args()
	if *version || (len(rest) > 0 && rest[0] == "version") {
		if len(rest) > 1 {
			return cli.Usagef(stderr, "tokenctl version", "unexpected argument %q", rest[1])
		}
		return cli.Version(stdout, "tokenctl")
	}
	if len(rest) > 0 && rest[0] == "help" {
		fmt.Fprintln(stdout, ctlUsage)
		return 0
	}
	if len(rest) == 0 {
		return cli.Usagef(stderr, "tokenctl", "no command given")
	}
	c := &Client{Admin: *admin, Bearer: *bearer}
	var (
		out TokenJSON
		err error
	)
	switch cmd := rest[0]; cmd {
	case "issue":
		ifs := flag.NewFlagSet("tokenctl issue", flag.ContinueOnError)
		p := ifs.String("pan", "", "card number to tokenize")
		exp := ifs.String("expiry", "", "card expiry YYMM")
		kind := ifs.String("kind", "device", "device or one-time")
		var merchants, modes listFlag
		ifs.Var(&merchants, "merchant", "allowed merchant ID (repeatable)")
		ifs.Var(&modes, "entry-mode", "allowed POS entry mode prefix (repeatable)")
		if code, done := cli.Parse(ifs, rest[1:], ctlUsage, stdout, stderr); done {
			return code
		}
		if code, done := cli.NoArgs(ifs, stderr); done {
			return code
		}
		if *p == "" || *exp == "" {
			return cli.Usagef(stderr, "tokenctl issue", "--pan and --expiry are required")
		}
		out, err = c.Issue(ctx, *p, *exp, IssueOptions{Kind: Kind(*kind), Domain: Domain{Merchants: merchants, EntryModes: modes}})
	case "show", "suspend", "resume", "delete":
		if len(rest) != 2 {
			return cli.Usagef(stderr, "tokenctl "+cmd, "want exactly one TOKEN argument")
		}
		call := map[string]func(context.Context, string) (TokenJSON, error){
			"show": c.Get, "suspend": c.Suspend, "resume": c.Resume, "delete": c.Delete,
		}[cmd]
		out, err = call(ctx, rest[1])
	default:
		return cli.Usagef(stderr, "tokenctl", "unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tokenctl: %v\n", err)
		var ae *APIError
		if errors.As(err, &ae) {
			return 1
		}
		return 3
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

package tsp

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kbpay/switch/switch/store"
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

// CtlMain is tokenctl: issue|show|suspend|resume|delete against the
// provisioning API. It prints the API's JSON on stdout and returns the exit
// code (0 ok, 1 API refused, 2 usage, 3 unreachable).
func CtlMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, `usage: tokenctl [--admin ADDR] [--bearer TOKEN] COMMAND
  issue --pan PAN --expiry YYMM [--kind device|one-time] [--merchant ID ...] [--entry-mode NN ...]
  show TOKEN | suspend TOKEN | resume TOKEN | delete TOKEN
admin address and bearer token default to $SWITCH_ADMIN_ADDR / $SWITCH_ADMIN_TOKEN,
else the demo values 127.0.0.1:8580 / demo-admin-token.`)
	}
	fs := flag.NewFlagSet("tokenctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage
	admin := fs.String("admin", envOr(EnvAdmin, "127.0.0.1:8580"), "switch admin address")
	bearer := fs.String("bearer", envOr(EnvBearer, "demo-admin-token"), "provisioning API bearer token")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage()
		return 2
	}
	c := &Client{Admin: *admin, Bearer: *bearer}
	var (
		out TokenJSON
		err error
	)
	switch cmd := rest[0]; cmd {
	case "issue":
		ifs := flag.NewFlagSet("issue", flag.ContinueOnError)
		ifs.SetOutput(stderr)
		p := ifs.String("pan", "", "card number to tokenize")
		exp := ifs.String("expiry", "", "card expiry YYMM")
		kind := ifs.String("kind", "device", "device or one-time")
		var merchants, modes listFlag
		ifs.Var(&merchants, "merchant", "allowed merchant ID (repeatable)")
		ifs.Var(&modes, "entry-mode", "allowed POS entry mode prefix (repeatable)")
		if err := ifs.Parse(rest[1:]); err != nil || *p == "" || *exp == "" {
			usage()
			return 2
		}
		out, err = c.Issue(ctx, *p, *exp, IssueOptions{Kind: store.TokenKind(*kind), Domain: store.Domain{Merchants: merchants, EntryModes: modes}})
	case "show", "suspend", "resume", "delete":
		if len(rest) != 2 {
			usage()
			return 2
		}
		call := map[string]func(context.Context, string) (TokenJSON, error){
			"show": c.Get, "suspend": c.Suspend, "resume": c.Resume, "delete": c.Delete,
		}[cmd]
		out, err = call(ctx, rest[1])
	default:
		usage()
		return 2
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

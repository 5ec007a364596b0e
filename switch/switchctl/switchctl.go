// Package switchctl is the operators' command line over switchd's admin
// API: find transactions, list and act on the store-and-forward queue,
// read reconciliation mismatches and readiness. cmd/switchctl runs Main.
package switchctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kbpay/switch/internal/buildinfo"
)

// Environment variables switchctl reads when flags are not given.
const (
	EnvAdmin    = "SWITCH_ADMIN_ADDR"
	EnvBearer   = "SWITCH_ADMIN_TOKEN"
	EnvOperator = "USER"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitRefused     = 1 // the API answered with an error
	ExitUsage       = 2
	ExitUnreachable = 3
)

const usage = `usage: switchctl [--admin ADDR] [--bearer TOKEN] COMMAND [ARGS]

Commands:
  txn search [--rrn R] [--stan S] [--terminal T] [--merchant M]
             [--from TIME] [--to TIME] [--state STATE] [--limit N]
                          find transactions (newest first); TIME is RFC 3339
  txn show ID             one transaction with its history and SAF items
  saf list [--state pending|review|done|resolved|all] [--route R] [--kind reversal|refund] [--txn ID]
                          the store-and-forward queue (default: pending)
  saf retry ID [--operator NAME]
                          send a give-back now; an item in manual review goes back to pending
  saf resolve ID --reason TEXT [--operator NAME]
                          close an item in manual review (settled outside the switch)
  reconciliations         terminal batches that did not agree with the journal
  ready                   the switch's readiness and issuer links
  version                 this program's version

Flags:
  --admin ADDR    admin API address, host:port or an http(s):// URL
                  (default $SWITCH_ADMIN_ADDR, else 127.0.0.1:8580)
  --bearer TOKEN  admin API bearer token (default $SWITCH_ADMIN_TOKEN, else
                  the development token demo-admin-token)
  --operator NAME who acts, recorded with SAF actions (default $USER)

Output is the API's JSON. Exit status: 0 ok, 1 the API refused, 2 usage,
3 switchd unreachable. See docs/operations.md for the runbooks.`

// Main runs switchctl and returns its exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("switchctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	admin := fs.String("admin", or(getenv(EnvAdmin), "127.0.0.1:8580"), "")
	bearer := fs.String("bearer", or(getenv(EnvBearer), "demo-admin-token"), "")
	showVersion := fs.Bool("version", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return ExitOK
		}
		return usageError(stderr, err.Error())
	}
	rest := fs.Args()
	if *showVersion || (len(rest) == 1 && rest[0] == "version") {
		fmt.Fprintf(stdout, "switchctl %s\n", buildinfo.Get())
		return ExitOK
	}
	if len(rest) == 0 {
		return usageError(stderr, "no command given")
	}
	c := client{base: baseURL(*admin), bearer: *bearer, out: stdout}
	operator := getenv(EnvOperator)
	cmd, err := c.command(rest, operator)
	if err != nil {
		return usageError(stderr, err.Error())
	}
	if err := cmd(ctx); err != nil {
		fmt.Fprintf(stderr, "switchctl: %v\n", err)
		var ae *apiError
		if errors.As(err, &ae) {
			return ExitRefused
		}
		return ExitUnreachable
	}
	return ExitOK
}

func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "switchctl: %s (switchctl --help lists the commands)\n", msg)
	return ExitUsage
}

// command parses a command line into the call it makes.
func (c client) command(args []string, operator string) (func(context.Context) error, error) {
	verb := strings.Join(args[:min(2, len(args))], " ")
	switch verb {
	case "txn search":
		q, err := queryFlags(args[2:], "rrn", "stan", "terminal", "merchant", "from", "to", "state", "limit")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			return c.call(ctx, http.MethodGet, "/v1/transactions?"+q.Encode(), nil)
		}, nil
	case "saf list":
		q, err := queryFlags(args[2:], "state", "route", "kind", "txn", "limit")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { return c.call(ctx, http.MethodGet, "/v1/saf?"+q.Encode(), nil) }, nil
	case "txn show":
		id, _, err := idAndFlags(args[2:])
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { return c.call(ctx, http.MethodGet, "/v1/transactions/"+id, nil) }, nil
	case "saf retry", "saf resolve":
		id, q, err := idAndFlags(args[2:], "operator", "reason")
		if err != nil {
			return nil, err
		}
		body := map[string]string{"operator": or(q.Get("operator"), operator), "reason": q.Get("reason")}
		if args[1] == "resolve" && (body["reason"] == "" || body["operator"] == "") {
			return nil, errors.New("saf resolve needs --reason and an operator (--operator or $USER)")
		}
		if args[1] == "retry" && q.Get("reason") != "" {
			return nil, errors.New("saf retry takes no --reason")
		}
		return func(ctx context.Context) error { return c.call(ctx, http.MethodPost, "/v1/saf/"+id+"/"+args[1], body) }, nil
	}
	if len(args) == 1 {
		switch args[0] {
		case "reconciliations":
			return func(ctx context.Context) error { return c.call(ctx, http.MethodGet, "/v1/reconciliations", nil) }, nil
		case "ready":
			return func(ctx context.Context) error { return c.call(ctx, http.MethodGet, "/readyz", nil) }, nil
		}
	}
	return nil, fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

// queryFlags parses --name value flags (only the names given) into a query.
func queryFlags(args []string, names ...string) (url.Values, error) {
	fs := flag.NewFlagSet("switchctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{}
	for _, n := range names {
		vals[n] = fs.String(n, "", "")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	q := url.Values{}
	for n, v := range vals {
		if *v != "" {
			q.Set(n, *v)
		}
	}
	return q, nil
}

// idAndFlags parses "ID [--flag value ...]" (flags before or after the ID).
func idAndFlags(args []string, names ...string) (string, url.Values, error) {
	var id string
	var rest []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			if !strings.Contains(args[i], "=") && i+1 < len(args) {
				rest = append(rest, args[i+1])
				i++
			}
			continue
		}
		if id != "" {
			return "", nil, fmt.Errorf("unexpected argument %q", args[i])
		}
		id = args[i]
	}
	if id == "" || strings.Trim(id, "0123456789") != "" {
		return "", nil, errors.New("a numeric ID is required")
	}
	q, err := queryFlags(rest, names...)
	return id, q, err
}

type client struct {
	base   string
	bearer string
	out    io.Writer
}

// apiError is an answer of the API that is not a success.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("admin API: %d %s", e.status, e.msg) }

// call sends one request and prints the JSON answer, indented.
func (c client) call(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+strings.TrimSuffix(path, "?"), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.bearer)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reaching switchd's admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 && !(path == "/readyz" && resp.StatusCode == http.StatusServiceUnavailable) {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return &apiError{resp.StatusCode, e.Error}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		_, err = c.out.Write(raw)
		return err
	}
	_, err = fmt.Fprintln(c.out, strings.TrimSpace(pretty.String()))
	return err
}

func baseURL(admin string) string {
	if strings.HasPrefix(admin, "http://") || strings.HasPrefix(admin, "https://") {
		return strings.TrimSuffix(admin, "/")
	}
	return "http://" + admin
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

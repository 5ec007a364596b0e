package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kbpay/switch/simulator/load"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// benchBIN is the issuer's BIN; every card of the run is under it.
const benchBIN = "9410"

// issuerBalance is every account's opening balance: at most 999 KRW a
// purchase, no run spends it.
const issuerBalance int64 = 1_000_000_000_000_000

// demoAdminToken is switchd's documented development bearer token, used
// when the configured token variable is unset (as here).
const demoAdminToken = "demo-admin-token"

// target is one path, started: where the load goes and what is measured.
type target struct {
	path   string
	addr   string // where the load generator connects
	mid    *process
	issuer *process
	admin  string // switchd's admin address
	pprof  string // switchd's profiling address, when profiling
	cards  []string
	tokens bool
}

func (t *target) stop() {
	t.mid.stop(15 * time.Second)
	t.issuer.stop(10 * time.Second)
}

// startPath starts the issuer emulator and the path's middle process.
func startPath(ctx context.Context, o Options, path string) (*target, error) {
	dir := filepath.Join(o.WorkDir, path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("path folder: %w", err)
	}
	if path == PathTokenVault { // before its processes start: the first fill takes minutes
		if err := prepareVault(ctx, o.vaultTemplate, filepath.Join(dir, "data"), o.Vault, o.Log); err != nil {
			return nil, err
		}
	}
	t := &target{path: path, cards: load.GenerateCards(max(o.Cards, o.tokens(path)), []string{benchBIN})}
	direct := path == PathDirect || path == PathRelay || path == PathDurableRelay
	spec, header := specs.IssuerDialect, "ascii4"
	if direct { // no translation on these paths: the issuer speaks the terminal dialect
		spec, header = specs.TerminalDialect, "binary2"
	}
	issuerAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("issuers:\n  - name: card-a\n    addr: %q\n    bins: [%q]\n    default_balance: %d\n    spec: %s\n    header: %s\n",
		issuerAddr, benchBIN, issuerBalance, spec, header)
	cfgPath := filepath.Join(dir, "issuersim.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("issuer configuration: %w", err)
	}
	if t.issuer, err = startProcess("issuersim", filepath.Join(o.Bin, "issuersim"), dir, nil,
		"--config", cfgPath, "--admin", "off", "--log-level", "warn", "--seed", "1"); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitListening(sctx, t.issuer, issuerAddr); err != nil {
		t.stop()
		return nil, err
	}
	switch path {
	case PathDirect:
		t.addr = issuerAddr
		return t, nil
	case PathRelay, PathDurableRelay:
		if t.addr, err = freeAddr(); err != nil {
			t.stop()
			return nil, err
		}
		args := []string{"--listen", t.addr, "--upstream", issuerAddr, "--spec", spec, "--header", header}
		if path == PathDurableRelay {
			args = append(args, "--log", filepath.Join(dir, "relay.log"))
		}
		if t.mid, err = startProcess("benchrelay", o.middle("benchrelay"), dir, nil, args...); err != nil {
			t.stop()
			return nil, err
		}
		if err := waitListening(sctx, t.mid, t.addr); err != nil {
			t.stop()
			return nil, err
		}
		return t, nil
	}
	if err := t.startSwitchd(sctx, o, dir, issuerAddr); err != nil {
		t.stop()
		return nil, err
	}
	if n := o.tokens(path); n > 0 {
		// Provisioning gets its own deadline: a minute, and one more per
		// 10,000 tokens.
		pctx, cancel := context.WithTimeout(ctx, time.Duration(n/10000+1)*time.Minute)
		defer cancel()
		if err := t.provisionTokens(pctx, n); err != nil {
			t.stop()
			return nil, err
		}
	}
	return t, nil
}

// startSwitchd writes the bench configuration (one terminal listener with
// its per-terminal rate limit on, one route to the emulator) and starts
// switchd.
func (t *target) startSwitchd(ctx context.Context, o Options, dir, issuerAddr string) error {
	var err error
	if t.addr, err = freeAddr(); err != nil {
		return err
	}
	if t.admin, err = freeAddr(); err != nil {
		return err
	}
	durable := t.path != PathNoFsync
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %q\nlog:\n  level: warn\ndrain_timeout: 5s\n", filepath.Join(dir, "data"))
	// Unset variables: the development master key and the demo admin token.
	fmt.Fprintf(&b, "admin:\n  addr: %q\n  bearer_token_env: BENCH_ADMIN_TOKEN_UNSET\n", t.admin)
	fmt.Fprintf(&b, "hsm:\n  master_key_env: BENCH_MASTER_KEY_UNSET\n")
	fmt.Fprintf(&b, "listeners:\n  - name: terminal\n    addr: %q\n    rate_per_terminal: %d\n", t.addr, RatePerTerminal)
	fmt.Fprintf(&b, "routes:\n  - name: card-a\n    bins: [%q]\n    addrs: [%q]\n", benchBIN, issuerAddr)
	fmt.Fprintf(&b, "journal:\n  durable: %t\n", durable)
	cfgPath := filepath.Join(dir, "switchd.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("switchd configuration: %w", err)
	}
	var env []string
	if o.ProfileDir != "" {
		if t.pprof, err = freeAddr(); err != nil {
			return err
		}
		env = append(env, "SWITCHD_PPROF_ADDR="+t.pprof)
	}
	if t.mid, err = startProcess("switchd", o.middle("switchd"), dir, env, "--config", cfgPath); err != nil {
		return err
	}
	if _, err := terminal.WaitReady(ctx, t.admin); err != nil {
		if perr := t.mid.alive(); perr != nil {
			return perr
		}
		return fmt.Errorf("%w (log %s:\n%s)", err, t.mid.log, tail(t.mid.log, 2048))
	}
	return nil
}

// provisionTokens issues a device token for each of the first n cards
// through switchd's provisioning API; the load then sends the tokens.
func (t *target) provisionTokens(ctx context.Context, n int) error {
	n = min(n, len(t.cards))
	api := &tokenapi.Client{Admin: t.admin, Bearer: demoAdminToken}
	toks := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tok, err := api.Issue(ctx, t.cards[i], "3012", tokenapi.IssueOptions{Kind: store.DeviceToken})
			toks[i], errs[i] = tok.Token, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("provisioning tokens: %w", err)
		}
	}
	t.cards, t.tokens = toks, true
	return nil
}

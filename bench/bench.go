// Package bench is `make bench`: one run that starts the project's own
// processes (issuersim, benchrelay, switchd from bin/) on 127.0.0.1, drives
// each path with the load generator (simulator/load) closed at 16 and 64
// in flight and open at 1,000 and 5,000 TPS, measures the middle process
// (relay or switch) from /proc, stops everything by itself, and reports a
// table and bench/results.json. See bench/README.md.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/kbpay/switch/simulator/load"
)

// Paths, in the order they run; Direct is the reference of every ratio.
const (
	PathDirect = "direct" // load generator -> issuer emulator (terminal dialect)
	PathRelay  = "relay"  // -> benchrelay (one multiplexed issuer link) -> issuer
	// PathDurableRelay is the relay making each request and each answer
	// durable in a log of its own before passing it on (one write and one
	// fdatasync per group, nothing indexed): what the switch's durability
	// rule costs with no switch around it, on the machine.
	PathDurableRelay = "relay-durable"
	PathPAN          = "switch-pan"     // -> switchd, durable journal, card numbers
	PathToken        = "switch-token"   // -> switchd, durable journal, device tokens
	PathNoFsync      = "switch-nofsync" // -> switchd, journal without fsync, card numbers
	// PathTokenVault is switch-token with Options.Vault more tokens in the
	// vault, written before switchd starts (the load uses the provisioned
	// ones): follows switch-token when Vault > 0.
	PathTokenVault = "switch-token-vault"
	// PathTokenCold is switch-token paying with Options.ColdTokens tokens,
	// each used about once a phase, as a wallet's device token is in the
	// field (a few uses a day among millions): every use reads its token
	// from the vault and writes its use count, where switch-token's few
	// hundred tokens, each used several times a second, are answered from
	// the state the vault keeps (docs/tokens.md). Follows switch-token
	// (and switch-token-vault) when ColdTokens > 0.
	PathTokenCold = "switch-token-cold"
)

// extraPaths run only when their option asks for them, after switch-token.
var extraPaths = []string{PathTokenVault, PathTokenCold}

// AllPaths are the six paths of a full run.
var AllPaths = []string{PathDirect, PathRelay, PathDurableRelay, PathPAN, PathToken, PathNoFsync}

// Load is one load shape: Closed requests in flight, or Rate arrivals per
// second (open loop, latency from each intended send time).
type Load struct {
	Name   string
	Closed int
	Rate   float64
}

// DefaultLoads are the four loads of a full run.
var DefaultLoads = []Load{
	{Name: "closed-16", Closed: 16},
	{Name: "closed-64", Closed: 64},
	{Name: "open-1000", Rate: 1000},
	{Name: "open-5000", Rate: 5000},
}

// profileFile is where path's CPU profile during load goes in dir
// (closed-64 keeps the name it has always had).
func profileFile(dir, path, load string) string {
	if load == "closed-64" {
		return filepath.Join(dir, path+"-cpu.pprof")
	}
	return filepath.Join(dir, path+"-"+load+"-cpu.pprof")
}

// addedP99Load is the load whose p99 minus the direct path's is reported
// as what the switch (or relay) adds.
const addedP99Load = "open-5000"

// Defaults of Options.
const (
	DefaultDuration  = 10 * time.Second
	DefaultWarmup    = 2 * time.Second
	DefaultTerminals = 256
	DefaultCards     = 1000
	DefaultTokens    = 500
	// RatePerTerminal is the bench switchd's per-terminal limit (requests
	// per second per DE 41, bursts of twice that): on, but far above what
	// one of DefaultTerminals terminal IDs sends at the highest load.
	RatePerTerminal = 1000
)

// Options configure one run.
type Options struct {
	// Bin holds switchd, issuersim and benchrelay (make build).
	Bin string
	// WorkDir receives configurations, data folders and process logs;
	// "" means a temporary folder, removed at the end.
	WorkDir string
	// Duration is each phase's length; Warmup precedes each path's first
	// phase and is not measured.
	Duration, Warmup time.Duration
	// Paths and Loads select what runs; nil means all.
	Paths []string
	Loads []Load
	// Terminals is how many terminal connections (each its own DE 41)
	// every phase spreads its requests over.
	Terminals int
	// Cards (and Tokens for the token path) are the distinct card numbers
	// the load uses; the issuer's opening balance never runs out.
	Cards, Tokens int
	// Idle, when > 0, adds a phase on the PAN path: Idle idle terminal
	// connections held open while the closed-64 load runs.
	Idle int
	// ProfileDir, when set, takes a CPU profile of switchd on each switchd
	// path during each of ProfileLoads into ProfileDir/<path>-cpu.pprof
	// for closed-64 and ProfileDir/<path>-<load>-cpu.pprof for the others
	// (switchd's SWITCHD_PPROF_ADDR; the profiler costs a little
	// throughput).
	ProfileDir string
	// ProfileLoads names the loads ProfileDir profiles, each one of
	// Loads; nil means closed-64 when the run has it.
	ProfileLoads []string
	// Vault, when > 0, adds the switch-token-vault path: switch-token over
	// a vault holding Vault more tokens.
	Vault int
	// ColdTokens, when > 0, adds the switch-token-cold path: switch-token
	// paying with ColdTokens tokens (and as many cards on that path).
	ColdTokens int
	// Compare, when set, is a folder with a second build's switchd and
	// benchrelay: every relay and switchd path runs again with that
	// build's middle process (an issuer emulator of this build, the same
	// load), measured next to this build's, as "<path>@compare", and
	// Results.Compare gives the second build's TPS and CPU per transaction
	// over the first's, round by round.
	Compare string
	// round is which of the Rounds this is (0-based; set by Run), and
	// compared whether this run is the Compare build's (set by Run).
	round    int
	compared bool
	// vaultTemplate is the folder the switch-token-vault path's vault is
	// filled in once per run and copied from (set by Run).
	vaultTemplate string
	// Rounds, when > 1, runs the whole set that many times (runRound),
	// each round on fresh processes and data; each figure reported is the
	// median over the rounds, and each pair's ratio the median of its
	// rounds' (see Results.finish). The idle phase and the CPU profiles
	// are taken in the first round only.
	Rounds int
	// Log receives progress lines; nil means none.
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Warmup <= 0 {
		o.Warmup = DefaultWarmup
	}
	if len(o.Paths) == 0 {
		o.Paths = AllPaths
	}
	if len(o.Loads) == 0 {
		o.Loads = DefaultLoads
	}
	if len(o.ProfileLoads) == 0 && slices.ContainsFunc(o.Loads, func(l Load) bool { return l.Name == "closed-64" }) {
		o.ProfileLoads = []string{"closed-64"}
	}
	if o.Terminals <= 0 {
		o.Terminals = DefaultTerminals
	}
	if o.Cards <= 0 {
		o.Cards = DefaultCards
	}
	if o.Tokens <= 0 {
		o.Tokens = DefaultTokens
	}
	if o.Vault > 0 && slices.Contains(o.Paths, PathToken) && !slices.Contains(o.Paths, PathTokenVault) {
		i := slices.Index(o.Paths, PathToken)
		o.Paths = slices.Insert(slices.Clone(o.Paths), i+1, PathTokenVault)
	}
	if o.ColdTokens > 0 && slices.Contains(o.Paths, PathToken) && !slices.Contains(o.Paths, PathTokenCold) {
		i := slices.Index(o.Paths, PathToken)
		if slices.Contains(o.Paths, PathTokenVault) {
			i = slices.Index(o.Paths, PathTokenVault)
		}
		o.Paths = slices.Insert(slices.Clone(o.Paths), i+1, PathTokenCold)
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Run performs the benchmark and returns its results. Every process it
// starts is stopped before it returns.
func Run(ctx context.Context, o Options) (res *Results, err error) {
	o = o.withDefaults()
	for _, p := range o.Paths {
		if !knownPath(p) {
			return nil, fmt.Errorf("unknown path %q: want one of %v", p, AllPaths)
		}
	}
	for _, l := range o.ProfileLoads {
		if !slices.ContainsFunc(o.Loads, func(k Load) bool { return k.Name == l }) {
			return nil, fmt.Errorf("unknown profile load %q: want one of the run's loads", l)
		}
	}
	for _, name := range []string{"switchd", "issuersim", "benchrelay"} {
		if !needs(o.Paths, name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(o.Bin, name)); err != nil {
			return nil, fmt.Errorf("%s not built (make build): %w", name, err)
		}
		if o.Compare == "" || name == "issuersim" { // both builds use this one's emulator
			continue
		}
		if _, err := os.Stat(filepath.Join(o.Compare, name)); err != nil {
			return nil, fmt.Errorf("%s of the build to compare: %w", name, err)
		}
	}
	if o.Idle > 0 {
		if err := raiseNoFile(uint64(o.Idle + 4*o.Terminals + 1024)); err != nil {
			return nil, err
		}
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "switchbench-")
		if err != nil {
			return nil, fmt.Errorf("work folder: %w", err)
		}
		o.WorkDir = dir
		// Kept when the run fails: the error names the logs in it.
		defer func() {
			if err == nil {
				_ = os.RemoveAll(dir)
			}
		}()
	} else if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work folder: %w", err)
	}
	o.vaultTemplate = filepath.Join(o.WorkDir, "vault-template")
	res = newResults(o)
	defer res.finish()
	for round := range o.Rounds {
		if o.Rounds > 1 {
			fmt.Fprintf(o.Log, "=== round %d of %d\n", round+1, o.Rounds)
		}
		if err := runRound(ctx, o.forRound(round), res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// CompareSuffix ends the name of a path run with the Compare build.
const CompareSuffix = "@compare"

// forCompare is o for the Compare build's run of a path: its own work
// folder, no idle phase and no profiles (their files would collide).
func (o Options) forCompare() Options {
	o.compared = true
	o.WorkDir = filepath.Join(o.WorkDir, "compare")
	o.Idle, o.ProfileDir = 0, ""
	return o
}

// name is path as this run's phases are named.
func (o Options) name(path string) string {
	if o.compared {
		return path + CompareSuffix
	}
	return path
}

// middle is the relay's or switchd's executable for this run.
func (o Options) middle(name string) string {
	if o.compared {
		return filepath.Join(o.Compare, name)
	}
	return filepath.Join(o.Bin, name)
}

// forRound is o for round (0-based) of o.Rounds: from the second round on,
// its own work folder and seeds, and neither the idle phase nor profiles.
func (o Options) forRound(round int) Options {
	o.round = round
	if o.Rounds == 1 {
		return o
	}
	o.WorkDir = filepath.Join(o.WorkDir, fmt.Sprintf("round-%d", round+1))
	if round > 0 {
		o.Idle, o.ProfileDir = 0, ""
	}
	return o
}

func knownPath(p string) bool {
	return slices.Contains(AllPaths, p) || slices.Contains(extraPaths, p)
}

// tokenPath reports whether path p pays with tokens.
func tokenPath(p string) bool {
	return p == PathToken || slices.Contains(extraPaths, p)
}

// tokens is how many tokens path pays with (each for a card of its own;
// 0 on the paths that pay with card numbers).
func (o Options) tokens(path string) int {
	switch {
	case path == PathTokenCold:
		return o.ColdTokens
	case tokenPath(path):
		return o.Tokens
	}
	return 0
}

// needs reports whether any of paths runs binary name.
func needs(paths []string, name string) bool {
	for _, p := range paths {
		switch {
		case name == "issuersim":
			return true
		case name == "benchrelay" && (p == PathRelay || p == PathDurableRelay):
			return true
		case name == "switchd" && (p == PathPAN || p == PathNoFsync || tokenPath(p)):
			return true
		}
	}
	return false
}

// raiseNoFile raises this process's open-file limit (inherited by the
// processes it starts) to at least want, up to the hard limit.
func raiseNoFile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if lim.Max < want {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is below the %d descriptors the idle phase needs (raise it with ulimit -Hn as root, or lower BENCH_IDLE)", lim.Max, want)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", lim.Max, err)
	}
	return nil
}

// loadConfig is the load generator's configuration of one phase.
func loadConfig(o Options, t *target, l Load, prefix string, d time.Duration, seed uint64) load.Config {
	return load.Config{
		Addr:           t.addr,
		Closed:         l.Closed,
		Rate:           l.Rate,
		Duration:       d,
		Terminals:      o.Terminals,
		TerminalPrefix: prefix,
		Cards:          t.cards,
		CardsAreTokens: t.tokens,
		AmountMin:      100,
		AmountMax:      999,
		NoNetCancel:    true, // a timeout is counted, not compensated: keep phases independent
		Seed:           seed,
	}
}

// errNotServing is returned when a path's warm-up was not answered.
var errNotServing = errors.New("the path does not serve approvals")

// Command switchbench is `make bench`: it starts issuersim, benchrelay and
// switchd from bin/ on 127.0.0.1, drives seven paths (direct, bare relay,
// durable relay, switch with card numbers, with hot tokens, with cold
// tokens, with the journal not fsync'd) at closed 16/64 and open
// 1,000/5,000 TPS with the load generator, stops every process, prints a
// table and writes the results as JSON. Settings come from flags or the
// BENCH_* environment variables (bench/README.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kbpay/switch/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is the variable's value when it is set (even to ""), else def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	var paths, out, duration, warmup, idle, vault, cold, profileLoads, rounds string
	fs.StringVar(&o.Bin, "bin", env("BENCH_BIN", "bin"), "`folder` with switchd, issuersim, benchrelay (BENCH_BIN)")
	fs.StringVar(&duration, "duration", env("BENCH_DURATION", "10s"), "each phase's `length` (BENCH_DURATION)")
	fs.StringVar(&warmup, "warmup", env("BENCH_WARMUP", "2s"), "unmeasured warm-up per path (BENCH_WARMUP)")
	fs.StringVar(&idle, "idle", env("BENCH_IDLE", "0"), "`N` idle terminal connections held on switchd during an extra closed-64 phase (BENCH_IDLE)")
	fs.StringVar(&vault, "vault", env("BENCH_VAULT", "0"), "`N` > 0: after switch-token, switch-token-vault: the same over a vault with N more tokens (BENCH_VAULT; 3000000 takes minutes)")
	fs.StringVar(&cold, "cold-tokens", env("BENCH_COLD_TOKENS", "100000"), "`N` > 0: after switch-token, switch-token-cold: the same paying with N tokens, each used about once a phase as in the field (BENCH_COLD_TOKENS; 0 leaves it out; provisioning 100,000 takes about a minute)")
	fs.StringVar(&paths, "paths", env("BENCH_PATHS", strings.Join(bench.AllPaths, ",")), "comma-separated `paths` (BENCH_PATHS)")
	fs.StringVar(&out, "out", env("BENCH_OUT", "bench/results.json"), "results `file` (BENCH_OUT; \"\" none)")
	fs.StringVar(&o.WorkDir, "workdir", env("BENCH_WORKDIR", ""), "keep configurations, data and logs in `folder` (BENCH_WORKDIR; default a temporary one)")
	fs.StringVar(&o.ProfileDir, "profile", env("BENCH_PROFILE", ""), "write switchd's CPU profile of each switchd path's closed-64 into `folder` (BENCH_PROFILE)")
	fs.StringVar(&profileLoads, "profile-loads", env("BENCH_PROFILE_LOADS", ""), "comma-separated `loads` --profile profiles (BENCH_PROFILE_LOADS; default closed-64)")
	fs.StringVar(&o.Compare, "compare", env("BENCH_COMPARE", ""), "`folder` with a second build's switchd and benchrelay: each relay and switchd path also runs with it, next to this build's under each load, and the table gives its TPS and CPU over this build's (BENCH_COMPARE)")
	fs.StringVar(&rounds, "rounds", env("BENCH_ROUNDS", "1"), "`N` > 1: run the whole set N times, each round on fresh processes, and report each figure's median (BENCH_ROUNDS)")
	fs.IntVar(&o.Terminals, "terminals", bench.DefaultTerminals, "terminal IDs (connections) per phase")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.Duration, err = time.ParseDuration(duration); err != nil || o.Duration <= 0 {
		fmt.Fprintf(stderr, "switchbench: duration %q: want a positive Go duration like 10s\n", duration)
		return 2
	}
	if o.Warmup, err = time.ParseDuration(warmup); err != nil || o.Warmup <= 0 {
		fmt.Fprintf(stderr, "switchbench: warm-up %q: want a positive Go duration like 2s\n", warmup)
		return 2
	}
	if o.Idle, err = strconv.Atoi(idle); err != nil || o.Idle < 0 {
		fmt.Fprintf(stderr, "switchbench: idle %q: want a number of connections\n", idle)
		return 2
	}
	if o.ColdTokens, err = strconv.Atoi(cold); err != nil || o.ColdTokens < 0 {
		fmt.Fprintf(stderr, "switchbench: cold tokens %q: want a number of tokens\n", cold)
		return 2
	}
	if o.Vault, err = strconv.Atoi(vault); err != nil || o.Vault < 0 {
		fmt.Fprintf(stderr, "switchbench: vault %q: want a number of tokens\n", vault)
		return 2
	}
	if o.Rounds, err = strconv.Atoi(rounds); err != nil || o.Rounds < 1 {
		fmt.Fprintf(stderr, "switchbench: rounds %q: want a number of rounds, 1 or more\n", rounds)
		return 2
	}
	for p := range strings.SplitSeq(paths, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Paths = append(o.Paths, p)
		}
	}
	for l := range strings.SplitSeq(profileLoads, ",") {
		if l = strings.TrimSpace(l); l != "" {
			o.ProfileLoads = append(o.ProfileLoads, l)
		}
	}
	o.Log = stderr
	res, err := bench.Run(ctx, o)
	if res != nil && len(res.Phases) > 0 {
		fmt.Fprintln(stdout)
		_ = res.WriteTable(stdout)
		if out != "" {
			if werr := res.WriteFile(out); werr != nil {
				fmt.Fprintf(stderr, "switchbench: %v\n", werr)
				return 1
			}
			fmt.Fprintf(stderr, "switchbench: results written to %s\n", out)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchbench: %v\n", err)
		return 1
	}
	return 0
}

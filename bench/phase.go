package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/kbpay/switch/simulator/load"
)

// measureLoad runs load l (the li-th of the run's) against the started
// path t: one phase, profiled when asked, added to res and logged.
func measureLoad(ctx context.Context, o Options, t *target, li int, l Load, res *Results) error {
	path := t.path
	pi := pathIndex(path)
	var stopProfile func() error
	if t.pprof != "" && slices.Contains(o.ProfileLoads, l.Name) {
		stopProfile = startCPUProfile(ctx, t.pprof, o.Duration, profileFile(o.ProfileDir, path, l.Name))
	}
	ph, err := measure(ctx, o, t, l, fmt.Sprintf("B%d%d", pi, li), uint64(10000*o.round+100*pi+li+1))
	if stopProfile != nil {
		perr := stopProfile()
		if perr == nil && err == nil {
			ph.CPUByRole, perr = rolesOf(profileFile(o.ProfileDir, path, l.Name), ph.Answered)
		}
		if perr != nil {
			fmt.Fprintf(o.Log, "   CPU profile: %v\n", perr)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l.Name, err)
	}
	res.add(ph)
	commits := ""
	if ph.CommitsPerTxn > 0 {
		commits = fmt.Sprintf("  commits %.2f/txn (%.1f writes each)", ph.CommitsPerTxn, ph.WritesPerCommit)
	}
	fmt.Fprintf(o.Log, "   %-10s %-26s %8.0f TPS  p50 %6.2f  p99 %7.2f  p99.9 %7.2f ms  cpu %6.1f us/txn%s  unanswered %d  generator lag p99 %.2f ms  steal %.1f %%\n",
		l.Name, o.name(path), ph.TPS, ph.P50, ph.P99, ph.P999, ph.CPUPerTxnUS, commits, ph.Unanswered, ph.GeneratorLagP99, ph.StealPct)
	if len(ph.CPUByRole) > 0 {
		fmt.Fprintf(o.Log, "   %-37s CPU by role, us/txn (in system calls): %s\n", "", formatRoles(ph.CPUByRole))
	}
	return nil
}

// runIdle runs the idle phase on a fresh switch-pan switchd: after the
// open-loop overload the runtime keeps freed memory resident, which would
// hide the connections' cost, and the peak RSS of the other phases stays
// free of the idle ones.
func runIdle(ctx context.Context, o Options, res *Results) error {
	fmt.Fprintf(o.Log, "== %s: fresh switchd for %d idle connections\n", PathPAN, o.Idle)
	t, err := startWarm(ctx, o, PathPAN)
	if err != nil {
		return err
	}
	defer t.stop()
	idle, ph, err := idlePhase(ctx, o, t)
	if err != nil {
		return fmt.Errorf("idle connections: %w", err)
	}
	res.Idle = idle
	res.add(ph)
	fmt.Fprintf(o.Log, "   %d idle connections: RSS %.1f -> %.1f MiB; %s %8.0f TPS p99 %.2f ms, peak RSS %.1f MiB\n",
		idle.Connections, idle.RSSBeforeMiB, idle.RSSWithIdleMiB, ph.Load, ph.TPS, ph.P99, ph.PeakRSSMiB)
	return t.alive()
}

// startWarm starts a path and runs its unmeasured warm-up (warm).
func startWarm(ctx context.Context, o Options, path string) (*target, error) {
	t, err := startPath(ctx, o, path)
	if err != nil {
		return nil, err
	}
	if err := warm(ctx, o, t, fmt.Sprintf("W%d", pathIndex(path)), o.Warmup, 1); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// warm runs an unmeasured closed-16 load of d on the started path t from
// terminal IDs starting with prefix, which must be answered and approved.
func warm(ctx context.Context, o Options, t *target, prefix string, d time.Duration, seed uint64) error {
	w, err := load.Run(ctx, loadConfig(o, t, Load{Closed: 16}, prefix, d, seed))
	if err == nil && (w.Answered == 0 || w.ApprovalRate < 0.99) {
		err = fmt.Errorf("%w: warm-up answered %d of %d, %.1f %% approved (codes %v)",
			errNotServing, w.Answered, w.Sent, 100*w.ApprovalRate, w.ResponseCodes)
	}
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// alive returns an error when a process of the path has ended.
func (t *target) alive() error {
	if t.mid != nil {
		if err := t.mid.alive(); err != nil {
			return err
		}
	}
	return t.issuer.alive()
}

func pathIndex(path string) int {
	if i := slices.Index(extraPaths, path); i >= 0 {
		return len(AllPaths) + 1 + i
	}
	for i, p := range AllPaths {
		if p == path {
			return i + 1
		}
	}
	return 0
}

// measure runs one load against t and reads the middle process's and the
// issuer's CPU time and the middle process's peak RSS around it.
func measure(ctx context.Context, o Options, t *target, l Load, prefix string, seed uint64) (Phase, error) {
	ph := Phase{Path: o.name(t.path), Load: l.Name, Round: o.round + 1, StartedAt: time.Now().UTC(), Closed: l.Closed, TargetTPS: l.Rate, Terminals: o.Terminals, DurationS: o.Duration.Seconds()}
	var midCPU0, issCPU0 time.Duration
	var err error
	// switchd's journal counters, read outside the CPU window (serving
	// /metrics is not the load's work).
	var commits0 commitTally
	if t.admin != "" {
		if commits0, err = readCommits(ctx, t.admin); err != nil {
			return ph, err
		}
	}
	if t.mid != nil {
		ph.PeakRSSPerPhase = resetPeakRSS(t.mid.pid())
		if midCPU0, err = cpuTime(t.mid.pid()); err != nil {
			return ph, err
		}
	}
	if issCPU0, err = cpuTime(t.issuer.pid()); err != nil {
		return ph, err
	}
	machine0, err := readMachineTicks()
	if err != nil {
		return ph, err
	}
	rep, err := load.Run(ctx, loadConfig(o, t, l, prefix, o.Duration, seed))
	if err != nil {
		return ph, err
	}
	issCPU1, err := cpuTime(t.issuer.pid())
	if err != nil {
		return ph, err
	}
	machine1, err := readMachineTicks()
	if err != nil {
		return ph, err
	}
	ph.StealPct = stealPct(machine0, machine1)
	ph.fromReport(rep)
	if rep.Answered > 0 {
		ph.IssuerCPUPerTxnUS = float64((issCPU1 - issCPU0).Microseconds()) / float64(rep.Answered)
	}
	if t.mid != nil {
		midCPU1, err := cpuTime(t.mid.pid())
		if err != nil {
			return ph, err
		}
		ph.CPUSeconds = (midCPU1 - midCPU0).Seconds()
		if rep.Answered > 0 {
			ph.CPUPerTxnUS = float64((midCPU1 - midCPU0).Microseconds()) / float64(rep.Answered)
		}
		hwm, err := memKB(t.mid.pid(), "VmHWM")
		if err != nil {
			return ph, err
		}
		ph.PeakRSSMiB = float64(hwm) / 1024
	}
	if t.admin != "" {
		commits1, err := readCommits(ctx, t.admin)
		if err != nil {
			return ph, err
		}
		ph.setCommits(commits0, commits1)
	}
	return ph, nil
}

// idlePhase holds o.Idle idle terminal connections on switchd while the
// closed-64 load runs, and reports the RSS they cost.
func idlePhase(ctx context.Context, o Options, t *target) (*Idle, Phase, error) {
	pid := t.mid.pid()
	before, err := memKB(pid, "VmRSS")
	if err != nil {
		return nil, Phase{}, err
	}
	start := time.Now()
	conns, err := openIdle(ctx, t.addr, o.Idle)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if err != nil {
		return nil, Phase{}, err
	}
	opened := time.Since(start)
	time.Sleep(time.Second) // let the switch settle its per-connection state
	with, err := memKB(pid, "VmRSS")
	if err != nil {
		return nil, Phase{}, err
	}
	idle := &Idle{Connections: len(conns), OpenSeconds: opened.Seconds(),
		RSSBeforeMiB: float64(before) / 1024, RSSWithIdleMiB: float64(with) / 1024}
	idle.KiBPerConnection = float64(with-before) / float64(len(conns))
	l := Load{Name: fmt.Sprintf("closed-64+%d-idle", o.Idle), Closed: 64}
	ph, err := measure(ctx, o, t, l, "BI", 999)
	if err != nil {
		return nil, Phase{}, err
	}
	// Every idle connection must still be open: a switch that dropped
	// them would flatter the figure.
	idle.StillOpen = countOpen(conns)
	return idle, ph, nil
}

// openIdle opens n connections to addr, 64 at a time, and sends nothing.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make(chan error, 1)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: 10 * time.Second}
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				select {
				case errs <- fmt.Errorf("idle connection %d of %d: %w", i+1, n, err):
				default:
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	select {
	case err := <-errs:
		return out, err
	default:
		return out, nil
	}
}

// countOpen counts the connections the peer has not closed: a read with
// an already-passed deadline times out on an open idle connection and
// returns EOF (or a reset) on a closed one.
func countOpen(conns []net.Conn) int {
	open := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			open++
		}
	}
	return open
}

// startCPUProfile fetches a CPU profile of d from switchd's pprof
// endpoint into file; the returned func waits for it.
func startCPUProfile(ctx context.Context, addr string, d time.Duration, file string) func() error {
	done := make(chan error, 1)
	go func() {
		secs := max(int(d.Seconds()), 1)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
		if err != nil {
			done <- fmt.Errorf("fetching CPU profile: %w", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("fetching CPU profile: %s", resp.Status)
			return
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			done <- err
			return
		}
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return func() error { return <-done }
}

package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// slot is one path of a round, started and warmed up: with Compare, the
// compared build's run of a path is a slot of its own.
type slot struct {
	o    Options
	path string
	t    *target
}

// measureOrder is the order a load measures the paths in (forwards or
// backwards, slotOrder): every pair the targets compare (pairs) is next to
// each other or one apart, and the compared build's run of a path next to
// this build's.
var measureOrder = []string{PathRelay, PathDirect, PathDurableRelay, PathPAN, PathNoFsync, PathToken, PathTokenVault, PathTokenCold}

// runRound runs one round: it starts every path (and the compared build's
// runs of them) and warms each up, then runs the loads one at a time
// across all of them, every path measured back to back under the same
// load (measureOrder, slotOrder), each phase after a wait for the machine
// to be quiet (settle) and a short warm-up of its own; then it stops them,
// and the idle phase follows on a fresh switchd. The paths the issue's
// targets compare (pairs: tokens over card numbers, the big vault over
// the small, fsync over none, either build) are so measured one or two
// phases apart, not minutes, and drift of the machine reaches them alike.
func runRound(ctx context.Context, o Options, res *Results) error {
	var slots []*slot
	stopAll := func() {
		for _, s := range slots {
			s.t.stop()
		}
		slots = nil
	}
	defer stopAll()
	failed := func(s Options, path string, err error) error {
		return fmt.Errorf("path %s: %w (configurations and logs in %s)", s.name(path), err, filepath.Join(s.WorkDir, path))
	}
	for _, path := range o.Paths {
		runs := []Options{o}
		// The durable relay is not run with the compared build: a
		// benchrelay older than it has no -log.
		if o.Compare != "" && path != PathDirect && path != PathDurableRelay {
			runs = append(runs, o.forCompare())
		}
		for _, r := range runs {
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(o.Log, "== %s: starting\n", r.name(path))
			t, err := startWarm(ctx, r, path)
			if err != nil {
				return failed(r, path, err)
			}
			slots = append(slots, &slot{o: r, path: path, t: t})
		}
	}
	slices.SortStableFunc(slots, func(a, b *slot) int { return cmp.Compare(measureRank(a.path), measureRank(b.path)) })
	// What the start-up wrote (a copied vault of hundreds of MB) is
	// written back now, not during a phase; then the started processes'
	// own idle use is what "quiet" is measured against.
	syscall.Sync()
	floor, err := busy(ctx, slots, time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "== %d paths started, together %.2f CPUs busy while idle\n", len(slots), floor)
	for li, l := range o.Loads {
		fmt.Fprintf(o.Log, "== %s\n", l.Name)
		for _, k := range slotOrder(len(slots), li, o.round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := slots[k]
			// What the previous phase left running (an overloaded switchd
			// still answering its queue) must not be charged to this one.
			if err := settle(ctx, slots, floor+0.1, settleWindow, settleDeadline); err != nil {
				if errors.Is(err, errPathEnded) || ctx.Err() != nil {
					return err
				}
				fmt.Fprintf(o.Log, "   not settled before %s: %v\n", s.o.name(s.path), err)
			}
			// The path sat idle through the other paths' phases: its kept
			// token states aged out, its runtime gave memory back.
			pi := pathIndex(s.path)
			if err := warm(ctx, s.o, s.t, fmt.Sprintf("V%d%d", pi, li), min(s.o.Warmup, time.Second), uint64(10000*o.round+100*pi+li+50)); err != nil {
				return failed(s.o, s.path, err)
			}
			if err := measureLoad(ctx, s.o, s.t, li, l, res); err != nil {
				return failed(s.o, s.path, err)
			}
		}
	}
	for _, s := range slots {
		if err := s.t.alive(); err != nil {
			return failed(s.o, s.path, err)
		}
	}
	stopAll()
	if o.Idle > 0 && slices.Contains(o.Paths, PathPAN) {
		if err := runIdle(ctx, o, res); err != nil {
			return failed(o, PathPAN, err)
		}
	}
	return nil
}

// measureRank is path's place in measureOrder (paths not in it last).
func measureRank(path string) int {
	if i := slices.Index(measureOrder, path); i >= 0 {
		return i
	}
	return len(measureOrder)
}

// slotOrder is the order n started paths are measured in under the li-th
// load of round (0-based): all of them, forwards and backwards in turn
// (A B C, C B A, A B C, ...; a round starts the other way from the one
// before), so neighbours stay neighbours and which of two runs first
// alternates.
func slotOrder(n, li, round int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = k
	}
	if (li+round)%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// settleWindow and settleDeadline bound settle (/proc's CPU times count
// in 10 ms ticks: a window of 50 of them).
const (
	settleWindow   = 500 * time.Millisecond
	settleDeadline = 20 * time.Second
)

// errPathEnded: a started path's process has ended.
var errPathEnded = errors.New("a started path's process ended")

// busy is the CPUs the started paths' processes used together over
// window.
func busy(ctx context.Context, slots []*slot, window time.Duration) (float64, error) {
	total := func() (time.Duration, error) {
		var sum time.Duration
		for _, s := range slots {
			if err := s.t.alive(); err != nil {
				return 0, fmt.Errorf("%w: %s: %w", errPathEnded, s.o.name(s.path), err)
			}
			for _, p := range []*process{s.t.issuer, s.t.mid} {
				if p == nil {
					continue
				}
				c, err := cpuTime(p.pid())
				if err != nil {
					return 0, err
				}
				sum += c
			}
		}
		return sum, nil
	}
	c0, err := total()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	c1, err := total()
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(window), nil
}

// settle waits until the started paths' processes together use under
// quiet CPUs over window, or deadline passes (an error saying how busy
// they still were; the phase runs anyway). errPathEnded when one of them
// has ended.
func settle(ctx context.Context, slots []*slot, quiet float64, window, deadline time.Duration) error {
	end := time.Now().Add(deadline)
	for {
		b, err := busy(ctx, slots, window)
		if err != nil {
			return err
		}
		if b < quiet {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("still %.2f CPUs busy after %v (quiet is under %.2f)", b, deadline, quiet)
		}
	}
}

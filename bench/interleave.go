package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// slot is one path of a round, started and warmed up: with Compare, the
// compared build's run of a path is a slot of its own.
type slot struct {
	o    Options
	path string
	t    *target
}

// runRound runs one round: it starts every path (and the compared build's
// runs of them) and warms each up, then runs the loads one at a time
// across all of them, every path measured back to back under the same
// load (slotOrder), and stops them; the idle phase follows on a fresh
// switchd. The paths the targets compare (Pairs: tokens over
// card numbers, the big vault over the small, fsync over none, either
// build) are so measured seconds apart, not minutes, and drift of the
// machine reaches them alike.
func runRound(ctx context.Context, o Options, res *Results) (err error) {
	var slots []*slot
	defer func() {
		for _, s := range slots {
			s.t.stop()
		}
	}()
	failed := func(s Options, path string, err error) error {
		return fmt.Errorf("path %s: %w (configurations and logs in %s)", s.name(path), err, filepath.Join(s.WorkDir, path))
	}
	for _, path := range o.Paths {
		runs := []Options{o}
		if o.Compare != "" && path != PathDirect {
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
	for li, l := range o.Loads {
		fmt.Fprintf(o.Log, "== %s\n", l.Name)
		for _, k := range slotOrder(len(slots), li, o.round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := slots[k]
			// What the previous phase left running (an overloaded switchd
			// still answering its queue) must not be charged to this one.
			if err := settle(ctx, slots, settleWindow, settleDeadline); err != nil {
				fmt.Fprintf(o.Log, "   not settled before %s: %v\n", s.o.name(s.path), err)
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
	for _, s := range slots {
		s.t.stop()
	}
	slots = nil
	if o.Idle > 0 && slices.Contains(o.Paths, PathPAN) {
		if err := runIdle(ctx, o, res); err != nil {
			return failed(o, PathPAN, err)
		}
	}
	return nil
}

// slotOrder is the order n started paths are measured in under the li-th
// load of round (0-based): all of them, turned by one for each load and
// round, so that no path always runs first (right after the warm-ups or
// another load's overload) and paths next to each other stay next to
// each other.
func slotOrder(n, li, round int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = (k + li + round) % n
	}
	return order
}

// settleWindow and settleDeadline bound settle: quiet is under a tenth of
// a CPU over a window (/proc's CPU times count in 10 ms ticks).
const (
	settleWindow   = 500 * time.Millisecond
	settleDeadline = 20 * time.Second
)

// settle waits until the processes of the started paths together use
// under a tenth of a CPU over window, or deadline passes (an error saying
// how busy they still were; the phase runs anyway).
func settle(ctx context.Context, slots []*slot, window, deadline time.Duration) error {
	var pids []int
	for _, s := range slots {
		pids = append(pids, s.t.issuer.pid())
		if s.t.mid != nil {
			pids = append(pids, s.t.mid.pid())
		}
	}
	total := func() (time.Duration, error) {
		var sum time.Duration
		for _, pid := range pids {
			c, err := cpuTime(pid)
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
	end := time.Now().Add(deadline)
	for {
		c0, err := total()
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(window):
		}
		c1, err := total()
		if err != nil {
			return err
		}
		busy := float64(c1-c0) / float64(window)
		if busy < 0.1 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("still %.2f CPUs busy after %v", busy, deadline)
		}
	}
}

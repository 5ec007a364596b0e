package embedded

import "time"

// groupWait decides whether the committer holds a group for more writes
// before committing it. A commit costs about the same whatever its group
// carries (the fsync alone was 218-267 µs of CPU on the development
// machine, BenchmarkDiskSync), and at a moderate load a sale's two writes
// mostly commit alone: holding a small group a little, when more writes
// are on their way, shares one commit among them.
//
// A group is held at most as long as a commit takes (smoothed) and never
// more than max: a held write waits at most about as long again as its
// commit takes, so a fast disk holds briefly and a slow one longer.
//
// Whether more writes are on their way is told by two things. The writes
// that arrived while the last commits ran (their rate, smoothed): a lone
// writer, or an idle switch, submits nothing while its write commits, so
// it is never held (a hold expecting under minExpected writes is not
// worth it). And what the last holds gained (smoothed): writers that are
// all in the group already (a few, each with one write at a time) arrive
// during commits too, but holding gains them nothing; once the holds gain
// under minGain writes on average, the next ones are skipped, twice as
// many each time (up to maxSkip), so such a load pays one fruitless hold
// every maxSkip commits.
type groupWait struct {
	max  time.Duration // the longest a group is held; 0: never
	size int           // a group this big is committed without waiting more
	// rate: writes per second arriving during commits; commit: how long a
	// commit takes; gain: writes a hold gained. All smoothed.
	rate, gain float64
	commit     time.Duration
	// backoff is how many commits to skip after the next fruitless hold;
	// skip, how many are left to skip now.
	backoff, skip int
}

const (
	minExpected = 0.1 // writes a hold must expect to be tried
	minGain     = 0.5 // writes holds must gain, on average, to go on
	maxSkip     = 64  // commits skipped at most after fruitless holds
)

func newGroupWait(max time.Duration, size int) groupWait {
	return groupWait{max: max, size: size, gain: 1}
}

// observe records that queued writes arrived during a commit that took d.
func (g *groupWait) observe(queued int, d time.Duration) {
	if d <= 0 {
		return
	}
	if g.commit == 0 {
		g.commit = d
	}
	g.commit += (d - g.commit) / 4
	g.rate += (float64(queued)/d.Seconds() - g.rate) / 4
}

// wait is how long to hold a group: as long as a commit takes (at most
// g.max) when writes are expected within it and holding has been
// gaining them, else 0.
func (g *groupWait) wait() time.Duration {
	d := min(g.max, g.commit)
	if d <= 0 || g.rate*d.Seconds() < minExpected {
		return 0
	}
	if g.skip > 0 {
		g.skip--
		return 0
	}
	return d
}

// held records what a hold gained: the writes that arrived during it.
func (g *groupWait) held(gained int) {
	g.gain += (float64(gained) - g.gain) / 4
	if g.gain >= minGain {
		g.backoff = 0
		return
	}
	g.backoff = min(2*g.backoff+1, maxSkip)
	g.skip = g.backoff
}

// gather adds the writes arriving on ch to batch until it holds size
// writes, d has passed (timer, stopped, is reset to it) or stop is
// closed.
func gather[T any](ch chan T, batch []T, size int, d time.Duration, timer *time.Timer, stop <-chan struct{}) []T {
	timer.Reset(d)
	defer timer.Stop()
	for len(batch) < size {
		select {
		case w := <-ch:
			batch = append(batch, w)
		case <-timer.C:
			return batch
		case <-stop:
			return batch
		}
	}
	return batch
}

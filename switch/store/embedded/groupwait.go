package embedded

import "time"

// groupWait decides whether the committer holds a group for more writes
// before committing it. A commit costs about the same whatever its group
// carries (the fsync alone was 218-267 µs of CPU on the development
// machine, BenchmarkDiskSync), and at a moderate load a sale's two writes
// mostly commit alone: holding a small group for a few hundred µs, when
// more writes are on their way, shares one commit among them.
//
// Whether more are on their way is told by the writes that arrived while
// the previous commits ran (their arrival rate, smoothed): a lone writer,
// or an idle switch, submits nothing while its write commits, so it never
// waits. Writers that all wait in the group already (a few, each with one
// write at a time) arrive during commits too, but a hold gains them
// nothing: after a hold that gained no write the next ones are skipped,
// twice as many each time (up to maxSkip), so such a load pays one
// fruitless hold every maxSkip commits.
type groupWait struct {
	max  time.Duration // the longest a group is held; 0: never
	size int           // a group this big is committed without waiting more
	rate float64       // writes per second arriving during commits, smoothed
	// backoff is how many commits to skip after the next fruitless hold;
	// skip, how many are left to skip now.
	backoff, skip int
}

// maxSkip bounds the commits skipped after fruitless holds.
const maxSkip = 64

// observe records that queued writes arrived during a commit that took d.
func (g *groupWait) observe(queued int, d time.Duration) {
	if d <= 0 {
		return
	}
	g.rate += (float64(queued)/d.Seconds() - g.rate) / 4
}

// wait is how long to hold a group: g.max when at least one more write
// is expected within it and no fruitless hold is being backed off from,
// else 0.
func (g *groupWait) wait() time.Duration {
	if g.max <= 0 || g.rate*g.max.Seconds() < 1 {
		return 0
	}
	if g.skip > 0 {
		g.skip--
		return 0
	}
	return g.max
}

// held records what a hold gained: writes that arrived during it.
func (g *groupWait) held(gained int) {
	if gained > 0 {
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

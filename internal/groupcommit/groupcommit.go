// Package groupcommit takes the writes waiting on a channel as one group:
// what a group-committing writer (the journal's committer, the durable
// relay's log) makes durable together with one sync.
package groupcommit

import "runtime"

// maxYields bounds how often Take lets writers run before it takes the
// group.
const maxYields = 4

// Take appends to batch (the write that woke the committer) the writes
// waiting in ch, up to max in all. It first lets the writers that are
// about to submit (those the last commit woke, with their next write) do
// so while more keep coming: that is the group. Bigger groups cost fewer
// commits per write; a yield with nobody else to run returns at once, so
// an idle writer waits for nothing.
func Take[T any](ch chan T, batch []T, max int) []T {
	for range maxYields {
		n := len(ch)
		runtime.Gosched()
		if len(ch) == n {
			break
		}
	}
	return Drain(ch, batch, max)
}

// Drain appends the writes waiting in ch to batch, up to max in all.
func Drain[T any](ch chan T, batch []T, max int) []T {
	for len(batch) < max {
		select {
		case w := <-ch:
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

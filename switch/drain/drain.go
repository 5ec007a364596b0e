// Package drain counts in-flight transactions so a shutdown can stop taking new ones and wait for the rest.
package drain

import (
	"context"
	"sync"
)

// Tracker counts in-flight transactions so a drain can wait for them.
// The zero value is ready: not draining, nothing in flight.
type Tracker struct {
	mu       sync.Mutex
	n        int
	draining bool
	idle     chan struct{} // closed when n drops to 0 while draining
}

// Enter counts a transaction in; false while draining (refuse it).
func (t *Tracker) Enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining {
		return false
	}
	t.n++
	return true
}

// Leave counts an entered transaction out.
func (t *Tracker) Leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// Drain refuses every later Enter.
func (t *Tracker) Drain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.draining = true
}

// Draining reports whether Drain was called.
func (t *Tracker) Draining() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.draining
}

// Wait waits until nothing is in flight (true) or ctx ends (false).
func (t *Tracker) Wait(ctx context.Context) bool {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return true
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	ch := t.idle
	t.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

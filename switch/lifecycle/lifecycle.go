// Package lifecycle undoes a failed start: what each step opened is closed, newest first, and the metrics it registered are unregistered.
package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Cleanup is the one list of what a start has opened so far. Each step
// that opens something registers its closer with Opened; Undo closes them
// all, newest first, then unregisters every metric registered through
// Registerer. A start that succeeded drops the list (its owner closes the
// components in its own order at shutdown).
type Cleanup struct {
	reg   *Registerer
	fault func(step string) error

	mu      sync.Mutex
	closers []closer
}

type closer struct {
	name  string
	close func() error
}

// New starts an empty list over reg. fault, when set (tests), is asked
// before every Step and a non-nil error fails that step.
func New(reg prometheus.Registerer, fault func(step string) error) *Cleanup {
	return &Cleanup{reg: Track(reg), fault: fault}
}

// Registerer registers on the start's registry and remembers what it
// registered, for Undo.
func (c *Cleanup) Registerer() *Registerer { return c.reg }

// Step names the next start-up step; it fails only when the test fault
// says so.
func (c *Cleanup) Step(name string) error {
	if c.fault == nil {
		return nil
	}
	if err := c.fault(name); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Opened registers what closes a component a step opened.
func (c *Cleanup) Opened(name string, close func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closers = append(c.closers, closer{name, close})
}

// Undo closes everything opened, newest first, each once, then
// unregisters the metrics registered through Registerer. It returns the
// closers' errors, each named.
func (c *Cleanup) Undo() error {
	c.mu.Lock()
	closers := c.closers
	c.closers = nil
	c.mu.Unlock()
	var errs []error
	for _, cl := range slices.Backward(closers) {
		if err := cl.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", cl.name, err))
		}
	}
	c.reg.UnregisterAll()
	return errors.Join(errs...)
}

// Registerer is a prometheus.Registerer that remembers what it
// registered, so that UnregisterAll takes exactly that off the registry
// again (and nothing a caller registered there on its own).
type Registerer struct {
	reg prometheus.Registerer

	mu   sync.Mutex
	regd []prometheus.Collector
}

var _ prometheus.Registerer = (*Registerer)(nil)

// Track wraps reg.
func Track(reg prometheus.Registerer) *Registerer { return &Registerer{reg: reg} }

// Register implements prometheus.Registerer.
func (r *Registerer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regd = append(r.regd, c)
	return nil
}

// MustRegister implements prometheus.Registerer: it panics on the first
// collector that fails to register, as the registry's own does.
func (r *Registerer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *Registerer) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.Index(r.regd, c); i >= 0 {
		r.regd = slices.Delete(r.regd, i, i+1)
	}
	return r.reg.Unregister(c)
}

// Registered is how many collectors are registered through r now.
func (r *Registerer) Registered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.regd)
}

// UnregisterAll unregisters every collector registered through r, newest
// first.
func (r *Registerer) UnregisterAll() {
	r.mu.Lock()
	regd := r.regd
	r.regd = nil
	r.mu.Unlock()
	for _, c := range slices.Backward(regd) {
		r.reg.Unregister(c)
	}
}

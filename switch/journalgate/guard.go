// Package journalgate closes the gate to new sales while the journal refuses writes and holds the outcomes it refused.
package journalgate

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/promreg"
	"github.com/kbpay/switch/switch/pipeline"
)

// Guard is the switch's pipeline.JournalGuard: it closes the gate
// to new sales on the first journal write that fails, keeps the outcomes
// the journal refused, and opens again once a probe write succeeded and
// every held outcome is journaled (the switch's journal keeper). It also
// knows which journal rows this process is still working on, for the
// in-flight sweep.
type Guard struct {
	log     *zap.Logger
	healthy atomic.Bool // the hot path reads only this

	mu       sync.Mutex
	reason   string    // why not healthy
	since    time.Time // first failure of the current outage
	failures uint64    // bumped on every reported failure
	inFlight map[int64]struct{}
	held     map[int64]*pipeline.Held

	healthyGauge prometheus.Gauge
	heldGauge    prometheus.Gauge
	failed       prometheus.Counter
}

// New builds an open gate with its metrics registered on reg.
func New(log *zap.Logger, reg prometheus.Registerer) *Guard {
	g := &Guard{
		log: log, inFlight: map[int64]struct{}{}, held: map[int64]*pipeline.Held{},
		healthyGauge: promreg.Gauge(reg, "journal_healthy",
			"1 while the journal accepts writes; 0 while it fails and new sales are refused (91)."),
		heldGauge: promreg.Gauge(reg, "journal_held_outcomes",
			"Issuer outcomes the journal refused, held in memory until it accepts writes (then reversed or recorded)."),
		failed: promreg.Counter(reg, "journal_write_failures_total",
			"Journal writes of the transaction path that failed."),
	}
	g.healthy.Store(true)
	g.healthyGauge.Set(1)
	return g
}

// Admit implements pipeline.JournalGuard.
func (g *Guard) Admit() error {
	if g.healthy.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("journal not accepting writes since %s", g.since.UTC().Format(time.RFC3339))
}

// Track implements pipeline.JournalGuard.
func (g *Guard) Track(id int64) func() {
	g.mu.Lock()
	g.inFlight[id] = struct{}{}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.inFlight, id)
		g.mu.Unlock()
	}
}

// Failed implements pipeline.JournalGuard.
func (g *Guard) Failed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failLocked(err)
}

// Hold implements pipeline.JournalGuard.
func (g *Guard) Hold(h *pipeline.Held, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[h.Row.ID] = h
	g.heldGauge.Set(float64(len(g.held)))
	g.log.Error("journal refused an issuer outcome: held until it accepts writes",
		zap.Int64("txn", h.Row.ID), zap.String("route", h.Row.Route), zap.Bool("reverse", h.Reverse), zap.Error(err))
	g.failLocked(err)
}

func (g *Guard) failLocked(err error) {
	g.failures++
	g.failed.Inc()
	g.reason = err.Error()
	if g.healthy.Swap(false) {
		g.since = time.Now()
		g.healthyGauge.Set(0)
		g.log.Error("journal not accepting writes: refusing sales (91) until it does", zap.Error(err))
	}
}

// Busy reports whether this process still works on journal row id (in
// flight, or its outcome held): the sweep leaves such a row alone.
func (g *Guard) Busy(id int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, inFlight := g.inFlight[id]
	_, held := g.held[id]
	return inFlight || held
}

// Status is what /readyz says about the journal.
func (g *Guard) Status() (healthy bool, reason string) {
	if g.healthy.Load() {
		return true, "ok"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return false, fmt.Sprintf("not accepting writes since %s (%s); %d outcomes held; sales refused",
		g.since.UTC().Format(time.RFC3339), g.reason, len(g.held))
}

// Held returns the held outcomes and the failure count they were
// read at.
func (g *Guard) Held() ([]*pipeline.Held, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*pipeline.Held, 0, len(g.held))
	for _, h := range g.held {
		out = append(out, h)
	}
	return out, g.failures
}

// Settled forgets a held outcome the journal has taken.
func (g *Guard) Settled(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.held, id)
	g.heldGauge.Set(float64(len(g.held)))
}

// Recovered opens the gate, unless a failure was reported since the
// caller's probe (failures moved on) or an outcome is still held.
func (g *Guard) Recovered(failures uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures != failures || len(g.held) > 0 {
		return false
	}
	if !g.healthy.Swap(true) {
		g.healthyGauge.Set(1)
		g.log.Warn("journal accepts writes again: taking sales", zap.Duration("outage", time.Since(g.since)))
	}
	return true
}

var _ pipeline.JournalGuard = (*Guard)(nil)

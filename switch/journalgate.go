package payswitch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/pipeline"
)

// How often the journal keeper probes a failing journal, and sweeps for
// transactions left in flight.
const (
	journalProbeEvery  = time.Second
	inFlightSweepEvery = 5 * time.Second
)

// journalGuard is the switch's pipeline.JournalGuard: it closes the gate
// to new sales on the first journal write that fails, keeps the outcomes
// the journal refused, and opens again once a probe write succeeded and
// every held outcome is journaled (runJournalKeeper). It also knows which
// journal rows this process is still working on, for the in-flight sweep.
type journalGuard struct {
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

func newJournalGuard(log *zap.Logger, reg prometheus.Registerer) *journalGuard {
	g := &journalGuard{
		log: log, inFlight: map[int64]struct{}{}, held: map[int64]*pipeline.Held{},
		healthyGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "payswitch", Name: "journal_healthy",
			Help: "1 while the journal accepts writes; 0 while it fails and new sales are refused (91).",
		}),
		heldGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "payswitch", Name: "journal_held_outcomes",
			Help: "Issuer outcomes the journal refused, held in memory until it accepts writes (then reversed or recorded).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "journal_write_failures_total",
			Help: "Journal writes of the transaction path that failed.",
		}),
	}
	reg.MustRegister(g.healthyGauge, g.heldGauge, g.failed)
	g.healthy.Store(true)
	g.healthyGauge.Set(1)
	return g
}

// Admit implements pipeline.JournalGuard.
func (g *journalGuard) Admit() error {
	if g.healthy.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("journal not accepting writes since %s", g.since.UTC().Format(time.RFC3339))
}

// Track implements pipeline.JournalGuard.
func (g *journalGuard) Track(id int64) func() {
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
func (g *journalGuard) Failed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failLocked(err)
}

// Hold implements pipeline.JournalGuard.
func (g *journalGuard) Hold(h *pipeline.Held, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[h.Row.ID] = h
	g.heldGauge.Set(float64(len(g.held)))
	g.log.Error("journal refused an issuer outcome: held until it accepts writes",
		zap.Int64("txn", h.Row.ID), zap.String("route", h.Row.Route), zap.Bool("reverse", h.Reverse), zap.Error(err))
	g.failLocked(err)
}

func (g *journalGuard) failLocked(err error) {
	g.failures++
	g.failed.Inc()
	g.reason = err.Error()
	if g.healthy.Swap(false) {
		g.since = time.Now()
		g.healthyGauge.Set(0)
		g.log.Error("journal not accepting writes: refusing sales (91) until it does", zap.Error(err))
	}
}

// busy reports whether this process still works on journal row id (in
// flight, or its outcome held): the sweep leaves such a row alone.
func (g *journalGuard) busy(id int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, inFlight := g.inFlight[id]
	_, held := g.held[id]
	return inFlight || held
}

// status is what /readyz says about the journal.
func (g *journalGuard) status() (healthy bool, reason string) {
	if g.healthy.Load() {
		return true, "ok"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return false, fmt.Sprintf("not accepting writes since %s (%s); %d outcomes held; sales refused",
		g.since.UTC().Format(time.RFC3339), g.reason, len(g.held))
}

// heldOutcomes returns the held outcomes and the failure count they were
// read at.
func (g *journalGuard) heldOutcomes() ([]*pipeline.Held, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*pipeline.Held, 0, len(g.held))
	for _, h := range g.held {
		out = append(out, h)
	}
	return out, g.failures
}

func (g *journalGuard) settled(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.held, id)
	g.heldGauge.Set(float64(len(g.held)))
}

// recovered opens the gate, unless a failure was reported since the
// caller's probe (failures moved on) or an outcome is still held.
func (g *journalGuard) recovered(failures uint64) bool {
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

// runJournalKeeper heartbeats this instance's lease (heartbeatEvery),
// probes a failing journal (and settles the outcomes it refused as soon as
// it takes writes) and, while it is healthy, sweeps for transactions left
// in flight and takes over lapsed instances' work, until ctx ends.
func (s *Switch) runJournalKeeper(ctx context.Context) {
	defer s.keeperDone.Done()
	tick := time.NewTicker(journalProbeEvery)
	defer tick.Stop()
	lastSweep, lastBeat := time.Now(), time.Now()
	beatEvery := heartbeatEvery(s.store.Instance().LeaseOr())
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			if held, _ := s.guard.heldOutcomes(); len(held) > 0 {
				s.log.Error("stopping with issuer outcomes the journal refused: their rows stay forwarded and are reversed at the next start",
					zap.Int("held", len(held)))
			}
			return
		case now = <-tick.C:
		}
		beat := false
		// Half a tick of slack: ticks land a little before or after a
		// whole multiple, and a beat one tick late can cost a third of the
		// lease's margin against being taken for dead.
		if now.Sub(lastBeat) >= beatEvery-journalProbeEvery/2 {
			// Healthy or not: a store that takes the heartbeat keeps this
			// instance's work its own; one that does not closes the gate.
			if err := s.heartbeat(ctx, time.Now()); err == nil {
				lastBeat, beat = now, true
			} else if ctx.Err() == nil {
				s.log.Warn("heartbeat failed", zap.Error(err))
			}
		}
		if ok, _ := s.guard.status(); !ok {
			s.restoreJournal(ctx)
			continue
		}
		if now.Sub(lastSweep) >= inFlightSweepEvery {
			lastSweep = now
			if err := s.sweepInFlight(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.log.Warn("sweeping transactions left in flight", zap.Error(err))
			}
		} else if beat {
			// Between sweeps, at each heartbeat: a lapsed peer's work is
			// taken over within a third of a lease of its lapse.
			if err := s.takeOverLapsed(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.guard.Failed(err)
				s.log.Warn("taking over lapsed instances", zap.Error(err))
			}
		}
	}
}

// restoreJournal probes the journal with one small write; when it takes
// it, the held outcomes are journaled (reversals queued) and the gate
// opens.
func (s *Switch) restoreJournal(ctx context.Context) {
	held, failures := s.guard.heldOutcomes()
	if err := s.store.Sales().Probe(ctx, "journal accepts writes again"); err != nil {
		return
	}
	for _, h := range held {
		if taken, err := s.takenByPeer(ctx, h.Row.ID); err != nil {
			s.guard.Failed(err)
			return
		} else if taken {
			// This instance's lease lapsed during the outage: the survivor
			// recovered the row (reversed it), which stands.
			s.guard.settled(h.Row.ID)
			s.log.Warn("held outcome dropped: its transaction was taken over by another instance", zap.Int64("txn", h.Row.ID))
			continue
		}
		if err := s.ledger.SettleHeld(ctx, h); err != nil {
			s.guard.Failed(err)
			return
		}
		s.guard.settled(h.Row.ID)
		s.log.Warn("held outcome journaled", zap.Int64("txn", h.Row.ID), zap.String("route", h.Row.Route),
			zap.Bool("reversal_queued", h.Reverse))
	}
	s.guard.recovered(failures)
}

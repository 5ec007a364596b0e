package recovery

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// How often the journal keeper probes a failing journal, and sweeps for
// transactions left in flight.
const (
	journalProbeEvery  = time.Second
	inFlightSweepEvery = 5 * time.Second
)

// Start runs the journal keeper until ctx ends (Wait): it heartbeats this
// instance's lease (heartbeatEvery), probes a failing journal (and settles
// the outcomes it refused as soon as it takes writes) and, while it is
// healthy, sweeps for transactions left in flight and takes over lapsed
// instances' work. At each heartbeat it imports the issuer key changes
// other instances recorded (Deps.AdoptKeys).
func (k *Keeper) Start(ctx context.Context) {
	k.done.Add(1)
	go func() {
		defer k.done.Done()
		k.run(ctx)
	}()
}

// Wait returns once the journal keeper stopped.
func (k *Keeper) Wait() { k.done.Wait() }

func (k *Keeper) run(ctx context.Context) {
	tick := time.NewTicker(journalProbeEvery)
	defer tick.Stop()
	lastSweep, lastBeat := time.Now(), time.Now()
	beatEvery := heartbeatEvery(k.store.Instance().LeaseOr())
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			if held, _ := k.gate.Held(); len(held) > 0 {
				k.log.Error("stopping with issuer outcomes the journal refused: their rows stay forwarded and are reversed at the next start",
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
			if err := k.heartbeat(ctx, time.Now()); err == nil {
				lastBeat, beat = now, true
				// The store answers: key changes other instances took
				// reach this one within a heartbeat.
				k.adoptKeys(ctx)
			} else if ctx.Err() == nil {
				k.log.Warn("heartbeat failed", zap.Error(err))
			}
		}
		if ok, _ := k.gate.Status(); !ok {
			k.restoreJournal(ctx)
			continue
		}
		if now.Sub(lastSweep) >= inFlightSweepEvery {
			lastSweep = now
			if err := k.Sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
				k.log.Warn("sweeping transactions left in flight", zap.Error(err))
			}
		} else if beat {
			// Between sweeps, at each heartbeat: a lapsed peer's work is
			// taken over within a third of a lease of its lapse.
			if err := k.takeOverLapsed(ctx, time.Now()); err != nil && ctx.Err() == nil {
				k.gate.Failed(err)
				k.log.Warn("taking over lapsed instances", zap.Error(err))
			}
		}
	}
}

// restoreJournal probes the journal with one small write; when it takes
// it, the held outcomes are journaled (reversals queued) and the gate
// opens.
func (k *Keeper) restoreJournal(ctx context.Context) {
	held, failures := k.gate.Held()
	if err := k.store.Sales().Probe(ctx, "journal accepts writes again"); err != nil {
		return
	}
	for _, h := range held {
		if taken, err := k.takenByPeer(ctx, h.Row.ID); err != nil {
			k.gate.Failed(err)
			return
		} else if taken {
			// This instance's lease lapsed during the outage: the survivor
			// recovered the row (reversed it), which stands.
			k.gate.Settled(h.Row.ID)
			k.log.Warn("held outcome dropped: its transaction was taken over by another instance", zap.Int64("txn", h.Row.ID))
			continue
		}
		if err := k.ledger.SettleHeld(ctx, h); err != nil {
			k.gate.Failed(err)
			return
		}
		k.gate.Settled(h.Row.ID)
		k.log.Warn("held outcome journaled", zap.Int64("txn", h.Row.ID), zap.String("route", h.Row.Route),
			zap.Bool("reversal_queued", h.Reverse))
	}
	k.gate.Recovered(failures)
}

package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// Instances share a store (docs/store.md): each heartbeats its lease
// (store.lease); its journal rows and SAF items carry its instance_name.
// Recovery at start and the in-flight sweep act on this instance's own
// rows and on those taken over from an instance whose heartbeat lapsed,
// never on a live peer's.

// heartbeatEvery is how often an instance renews a lease of d: three
// times per lease, so one lost write does not let it lapse.
func heartbeatEvery(d time.Duration) time.Duration { return d / 3 }

// heartbeat renews this instance's lease; a failure is a store failure
// (the gate closes and /readyz fails until a probe write succeeds).
func (k *Keeper) heartbeat(ctx context.Context, now time.Time) error {
	if err := k.store.Instances().Heartbeat(ctx, now); err != nil {
		k.gate.Failed(err)
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// takeOverLapsed takes over the work of every instance whose heartbeat
// lapsed before now and recovers the transactions it left in flight
// (recoverRow: nobody else can be working on them). An instance another
// survivor took first yields nothing.
func (k *Keeper) takeOverLapsed(ctx context.Context, now time.Time) error {
	lapsed, err := k.store.Instances().Lapsed(ctx, now)
	if err != nil {
		return fmt.Errorf("listing lapsed instances: %w", err)
	}
	for _, p := range lapsed {
		taken, err := k.store.Instances().TakeOver(ctx, p.Name, now)
		if errors.Is(err, store.ErrLeaseHeld) {
			continue // it heartbeated again since it was listed
		}
		if err != nil {
			return fmt.Errorf("taking over instance %q: %w", p.Name, err)
		}
		k.log.Warn("took over a lapsed instance's work", zap.String("instance", p.Name),
			zap.Time("lease_until", p.LeaseUntil), zap.Int("in_flight", len(taken)))
		for _, t := range taken {
			if err := k.recoverRow(ctx, t); err != nil {
				return fmt.Errorf("recovering transaction %d of instance %q: %w", t.ID, p.Name, err)
			}
		}
	}
	return nil
}

// takenByPeer reports whether journal row id now belongs to another
// instance (this one's lease lapsed and a survivor took its work): an
// outcome held for it must not be journaled over the survivor's recovery.
func (k *Keeper) takenByPeer(ctx context.Context, id int64) (bool, error) {
	row, err := k.store.Lookup().Get(ctx, id)
	if err != nil {
		return false, err
	}
	me := k.store.Instance().Name
	return row.Owner != "" && row.Owner != me, nil
}

// ownInFlight lists what this instance left forwarded.
func (k *Keeper) ownInFlight(ctx context.Context) ([]store.Txn, error) {
	return k.store.Lookup().InFlight(ctx)
}

// adoptKeys imports the issuer key changes other instances recorded
// (Deps.AdoptKeys). A failure is logged and tried again at the next
// heartbeat: the old key stays current meanwhile.
func (k *Keeper) adoptKeys(ctx context.Context) {
	if k.adopt == nil {
		return
	}
	if err := k.adopt(ctx); err != nil && ctx.Err() == nil {
		k.log.Warn("importing issuer key changes recorded by other instances: old keys stay", zap.Error(err))
	}
}

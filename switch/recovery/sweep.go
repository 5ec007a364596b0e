package recovery

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// minSweepMargin is the least time a transaction gets beyond its route's
// timeout before the sweep takes it for lost.
const minSweepMargin = 5 * time.Second

// inFlightLimit is how long a transaction on route may stay forwarded
// before the sweep takes it for lost: the route's timeout plus
// max(minSweepMargin, timeout). An unknown route (removed since) gets the
// longest of the configured routes.
func (k *Keeper) inFlightLimit(route string) time.Duration {
	var timeout, longest time.Duration
	for _, r := range k.routes() {
		longest = max(longest, r.Timeout)
		if r.Name == route {
			timeout = r.Timeout
		}
	}
	if timeout == 0 {
		timeout = longest
	}
	return timeout + max(minSweepMargin, timeout)
}

// Sweep takes over the work of instances whose heartbeat lapsed
// (takeOverLapsed) and recovers this instance's transactions left
// forwarded past their limit (inFlightLimit) as of now, as recovery at
// start does: a sale is timed out and reversed, a cancel's repeat is
// queued. A row this process still works on (its request in flight, or
// its outcome held) is left alone, as is every row younger than its limit
// and every row of a live peer.
func (k *Keeper) Sweep(ctx context.Context, now time.Time) error {
	if err := k.takeOverLapsed(ctx, now); err != nil {
		k.gate.Failed(err)
		return err
	}
	left, err := k.ownInFlight(ctx)
	if err != nil {
		return err
	}
	for _, t := range left {
		if now.Sub(t.CreatedAt) < k.inFlightLimit(t.Route) || k.gate.Busy(t.ID) {
			continue
		}
		if t.OriginalID > 0 && t.IssuerSTAN == "" {
			// A cancel reserved but not (yet) sent: releasing it while the
			// pipeline might still send it would give money back twice.
			// Left to the recovery at start, when nobody else can be
			// working on it.
			continue
		}
		// Read it again: once nobody here works on it, whatever its owner
		// recorded is committed, and must not be overwritten.
		cur, err := k.store.Lookup().Get(ctx, t.ID)
		if err != nil {
			return fmt.Errorf("reading transaction %d: %w", t.ID, err)
		}
		if cur.State != store.Forwarded {
			continue
		}
		if err := k.recoverRow(ctx, cur); err != nil {
			k.gate.Failed(err)
			return fmt.Errorf("recovering transaction %d: %w", t.ID, err)
		}
		k.log.Warn("transaction left in flight past its timeout recovered", zap.Int64("txn", t.ID), zap.String("route", t.Route),
			zap.Duration("age", now.Sub(t.CreatedAt)))
	}
	return nil
}

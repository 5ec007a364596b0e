package saf

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
)

// TestResolveViaAnotherInstanceReleasesTheSTANEverywhere: two instances
// hold the STAN of a give-back in review from their start; an operator
// resolves it through one of them. That one lets the STAN go at once, the
// other on its next scan of the queue: neither keeps a settled give-back's
// STAN owned until it restarts.
func TestResolveViaAnotherInstanceReleasesTheSTANEverywhere(t *testing.T) {
	dir := t.TempDir()
	poolA, poolB := newTestPool(), newTestPool()
	a, st := testInstance(t, dir, "a", testRoutes{"fast": poolA}, zap.NewNop())
	b, _ := testInstance(t, dir, "b", testRoutes{"fast": poolB}, zap.NewNop())
	it := reviewItem(t, st, "000123")
	ctx := t.Context()
	for _, w := range []*Worker{a, b} {
		if err := w.HoldPending(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if poolA.Owned("000123") != 1 || poolB.Owned("000123") != 1 {
		t.Fatalf("STAN of the item in review owned %d times by a, %d by b; want once each", poolA.Owned("000123"), poolB.Owned("000123"))
	}
	start(t, []string{"fast"}, a, b)

	if _, err := b.Resolve(ctx, it.ID, "ops", "settled by phone"); err != nil {
		t.Fatal(err)
	}
	if n := poolB.Owned("000123"); n != 0 {
		t.Errorf("the resolving instance still owns the STAN (%d)", n)
	}
	eventually(t, "instance a still owns the STAN of a give-back b resolved", func() bool { return poolA.Owned("000123") == 0 })
}

// TestQueuedRepeatSTANReleasedWhenSettledElsewhere: the STAN of a
// give-back queued here as a repeat (a cancel whose answer never came) is
// held by the SAF worker, and let go on its next scan once another
// instance settled the item: acknowledged there, or resolved by an
// operator there.
func TestQueuedRepeatSTANReleasedWhenSettledElsewhere(t *testing.T) {
	for _, settle := range []string{store.SAFDone, store.SAFResolved} {
		t.Run(settle, func(t *testing.T) {
			dir := t.TempDir()
			pool := newTestPool()
			a, st := testInstance(t, dir, "a", testRoutes{"fast": pool}, zap.NewNop())
			ctx := t.Context()
			ledger := pipeline.LedgerOn(st)
			ledger.ReversalExpiry, ledger.HoldQueued = time.Hour, a.HoldSTAN
			cancel := store.Txn{ID: 42, Route: "fast", IssuerSTAN: "000777", IssuerTxTime: "1125101500"}
			if err := ledger.QueueRepeat(ctx, cancel, store.KindReversal, 4000); err != nil {
				t.Fatal(err)
			}
			if n := pool.Owned("000777"); n != 1 {
				t.Fatalf("queued repeat's STAN owned %d times, want once", n)
			}
			start(t, nil, a) // no sender: b takes the item over
			// Nothing settled yet: it stays owned past a scan.
			time.Sleep(2 * settledCheckEvery)
			if n := pool.Owned("000777"); n != 1 {
				t.Fatalf("pending repeat's STAN owned %d times, want once", n)
			}
			// a's lease lapsed: b takes its work over and claims the item.
			b := testPeer(t, dir, "b")
			if _, err := b.Instances().TakeOver(ctx, "a", time.Now()); err != nil {
				t.Fatal(err)
			}
			items, err := b.Queue().Claim(ctx, "fast", time.Now(), time.Minute, 10)
			if err != nil || len(items) != 1 {
				t.Fatalf("b's claim: %+v %v", items, err)
			}
			if settle == store.SAFDone {
				if err := b.Queue().Result(ctx, items[0], store.SAFDone, time.Now(), ""); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := b.Queue().Result(ctx, items[0], store.SAFReview, time.Now(), "expired"); err != nil {
					t.Fatal(err)
				}
				if _, err := b.SAFDesk().Resolve(ctx, items[0].ID, "ops", "settled by phone"); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "the STAN of a repeat settled by another instance still owned", func() bool { return pool.Owned("000777") == 0 })
		})
	}
}

package storetest

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// testHeartbeatsAndTakeOver: an instance is lapsed once its lease ended
// without a heartbeat; a live one's work is never taken; a lapsed one's
// in-flight transactions and pending SAF items move to the instance that
// takes it over, once.
func testHeartbeatsAndTakeOver(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	for _, h := range []store.Store{a, b} {
		if err := h.Instances().Heartbeat(ctx, t0); err != nil {
			t.Fatal(err)
		}
	}
	if lapsed, err := a.Instances().Lapsed(ctx, t0.Add(lease-time.Millisecond)); err != nil || len(lapsed) != 0 {
		t.Fatalf("lapsed inside the lease: %+v %v", lapsed, err)
	}
	if _, err := a.Instances().TakeOver(ctx, instB, t0.Add(time.Second)); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("take-over of a live peer: %v", err)
	}
	// b records work, then stops heartbeating; a goes on.
	inflight, err := b.Sales().Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	done := approvedSale(t, b, "000002", store.Scope{TerminalID: "TERM0001"})
	cancel, err := b.GiveBacks().ReserveCancel(ctx, cancelRow("000004", done, 1000))
	if err != nil {
		t.Fatal(err)
	}
	item := enqueue(t, b, "000003", t0)
	if err := a.Instances().Heartbeat(ctx, t0.Add(lease)); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(lease + time.Second)
	lapsed, err := a.Instances().Lapsed(ctx, at)
	if err != nil || len(lapsed) != 1 || lapsed[0].Name != instB || !lapsed[0].LeaseUntil.Equal(t0.Add(lease)) {
		t.Fatalf("lapsed: %+v %v", lapsed, err)
	}
	if lapsed, _ := b.Instances().Lapsed(ctx, at); len(lapsed) != 0 {
		t.Fatalf("a live peer or itself listed lapsed: %+v", lapsed)
	}
	taken, err := a.Instances().TakeOver(ctx, instB, at)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	for _, r := range taken {
		ids[r.ID] = true
		if r.Owner != instA {
			t.Errorf("taken row %d owned by %q", r.ID, r.Owner)
		}
	}
	// The sale in flight and the sale queued for reversal (still
	// forwarded) are taken; the approved one stays as it is.
	if !ids[inflight.ID] || !ids[cancel.ID] || ids[done.ID] {
		t.Fatalf("taken %v: want %d and %d, not %d", ids, inflight.ID, cancel.ID, done.ID)
	}
	// The lapsed instance, back, can no longer settle what was taken: the
	// survivor's recovery stands.
	if err := b.Sales().Set(ctx, inflight.ID, store.Update{State: store.Approved, RC: "00"}, "late"); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a lapsed instance settled a taken row: %v", err)
	}
	if err := b.GiveBacks().ReleaseCancel(ctx, cancel.ID, store.Answered, "05", "late"); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a lapsed instance released a taken cancel: %v", err)
	}
	if got := get(t, a, inflight.ID); got.State != store.Forwarded {
		t.Fatalf("a refused late outcome was applied: %s", got.State)
	}
	if err := a.Sales().Set(ctx, inflight.ID, store.Update{State: store.TimedOut, RC: "91"}, "recovered"); err != nil {
		t.Fatalf("the survivor settles what it took: %v", err)
	}
	if err := a.GiveBacks().ReleaseCancel(ctx, cancel.ID, store.Failed, "96", "recovered"); err != nil {
		t.Fatalf("the survivor releases what it took: %v", err)
	}
	if got := get(t, a, done.ID); got.Owner != instB {
		t.Fatalf("a settled row changed owner: %q", got.Owner)
	}
	pending, _ := a.Queue().List(ctx, store.SAFPending)
	if len(pending) != 1 || pending[0].ID != item.ID || pending[0].Owner != instA {
		t.Fatalf("SAF after take-over: %+v", pending)
	}
	if again, err := a.Instances().TakeOver(ctx, instB, at); len(again) != 0 || (err != nil && !errors.Is(err, store.ErrNotFound)) {
		t.Fatalf("second take-over: %+v %v", again, err)
	}
	if lapsed, _ := a.Instances().Lapsed(ctx, at); len(lapsed) != 0 {
		t.Fatalf("a taken-over instance still lapsed: %+v", lapsed)
	}
	if _, err := a.Instances().TakeOver(ctx, instA, at); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("taking over itself: %v", err)
	}
}

// testInFlightIsOwn: InFlight lists this instance's forwarded rows only,
// never a live peer's.
func testInFlightIsOwn(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	mine, err := a.Sales().Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sales().Begin(ctx, sale("000002")); err != nil {
		t.Fatal(err)
	}
	approvedSale(t, a, "000003", store.Scope{TerminalID: "TERM0001"})
	rows, err := a.Lookup().InFlight(ctx)
	if err != nil || len(rows) != 1 || rows[0].ID != mine.ID {
		t.Fatalf("in flight: %+v %v", rows, err)
	}
}

// testSequenceBlocksNeverOverlap: blocks reserved concurrently by two
// instances, and after reopening, never overlap.
func testSequenceBlocksNeverOverlap(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	if _, err := a.Instances().ReserveBlock(ctx, "rrn", 0); err == nil {
		t.Fatal("an empty block was reserved")
	}
	type block struct{ first, n int64 }
	var mu sync.Mutex
	var blocks []block
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(h store.Store, n int64) {
			defer wg.Done()
			first, err := h.Instances().ReserveBlock(ctx, "rrn", n)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			blocks = append(blocks, block{first, n})
			mu.Unlock()
		}([]store.Store{a, b}[i%2], int64(1+i*7))
	}
	wg.Wait()
	c := as(open, "switch-c")
	first, err := c.Instances().ReserveBlock(ctx, "rrn", 5)
	if err != nil {
		t.Fatal(err)
	}
	blocks = append(blocks, block{first, 5})
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].first < blocks[j].first })
	if blocks[0].first != 1 {
		t.Errorf("the sequence starts at %d, want 1", blocks[0].first)
	}
	for i := 1; i < len(blocks); i++ {
		if prev := blocks[i-1]; prev.first+prev.n > blocks[i].first {
			t.Fatalf("blocks overlap: %+v and %+v", prev, blocks[i])
		}
	}
	if other, err := c.Instances().ReserveBlock(ctx, "other", 3); err != nil || other != 1 {
		t.Fatalf("another sequence: %d %v", other, err)
	}
}

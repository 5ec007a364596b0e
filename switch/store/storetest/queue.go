package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// enqueue queues a reversal of 10000 for a new sale on route card-a, due
// at due.
func enqueue(t *testing.T, s store.Store, stn string, due time.Time) store.SAFItem {
	t.Helper()
	row, err := s.Sales().Begin(ctx, sale(stn))
	if err != nil {
		t.Fatal(err)
	}
	it := store.SAFItem{TxnID: row.ID, Route: "card-a", Kind: store.KindReversal, Amount: 10000, NextAt: due, ExpiresAt: due.Add(time.Hour)}
	if it.ID, err = s.Queue().Enqueue(ctx, it); err != nil {
		t.Fatal(err)
	}
	return it
}

// testSAFQueue: an item is queued (with its event), claimed when due, its
// first attempt's DE 11 / DE 7 kept, pushed back by a retry, settled;
// List and Depth follow.
func testSAFQueue(t *testing.T, open Open) {
	j := as(open, instA)
	q := j.Queue()
	it := enqueue(t, j, "000001", t0)
	if due, err := q.Claim(ctx, "card-a", t0.Add(-time.Second), lease, 10); err != nil || len(due) != 0 {
		t.Fatalf("claimed before due: %+v %v", due, err)
	}
	if due, _ := q.Claim(ctx, "card-b", t0, lease, 10); len(due) != 0 {
		t.Fatalf("claimed on another route: %+v", due)
	}
	due, err := q.Claim(ctx, "card-a", t0.Add(time.Millisecond), lease, 10)
	if err != nil || len(due) != 1 || due[0].ID != it.ID || due[0].Owner != instA || due[0].Kind != store.KindReversal || due[0].Amount != 10000 {
		t.Fatalf("due %+v %v", due, err)
	}
	if err := q.AssignFirstAttempt(ctx, it.ID, "000777", "1125101700"); err != nil {
		t.Fatal(err)
	}
	if err := q.Result(ctx, due[0], store.SAFPending, t0.Add(time.Minute), "no answer"); err != nil {
		t.Fatal(err)
	}
	if due, _ := q.Claim(ctx, "card-a", t0.Add(time.Second), lease, 10); len(due) != 0 {
		t.Fatal("retry not pushed back")
	}
	later, _ := q.Claim(ctx, "card-a", t0.Add(2*time.Minute), lease, 10)
	if len(later) != 1 || later[0].Attempts != 1 || later[0].STAN != "000777" || later[0].TxTime != "1125101700" || later[0].LastError != "no answer" {
		t.Fatalf("later %+v", later)
	}
	if n, _ := q.Depth(ctx); n != 1 {
		t.Fatalf("depth %d", n)
	}
	if err := q.Result(ctx, later[0], store.SAFDone, t0, ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Depth(ctx); n != 0 {
		t.Fatalf("depth %d after done", n)
	}
	done, err := q.List(ctx, store.SAFDone)
	if err != nil || len(done) != 1 || done[0].Attempts != 2 {
		t.Fatalf("done: %+v %v", done, err)
	}
	if pending, _ := q.List(ctx, store.SAFPending); len(pending) != 0 {
		t.Fatalf("pending: %+v", pending)
	}
	ev, _ := j.Lookup().Events(ctx, it.TxnID)
	if len(ev) != 3 {
		t.Fatalf("events %q: want queued, retry, acknowledged", ev)
	}
	// Oldest due first, at most limit.
	a := enqueue(t, j, "000002", t0.Add(2*time.Second))
	b := enqueue(t, j, "000003", t0.Add(time.Second))
	got, _ := q.Claim(ctx, "card-a", t0.Add(time.Minute), lease, 1)
	if len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("limit 1: %+v, want item %d", got, b.ID)
	}
	got, _ = q.Claim(ctx, "card-a", t0.Add(time.Minute), lease, 10)
	if len(got) != 2 || got[0].ID != b.ID || got[1].ID != a.ID {
		t.Fatalf("oldest due first: %+v", got)
	}
}

// testSAFClaimedByOneInstance: two instances racing to claim the due
// items: each is claimed by one of them only, and the other cannot record
// results or first attempts for it.
func testSAFClaimedByOneInstance(t *testing.T, open Open) {
	a := as(open, instA)
	b := as(open, instB)
	// Items of a third instance, leased until t0+lease: nobody claims
	// them before, anyone after.
	c := as(open, "switch-c")
	for i := 0; i < 20; i++ {
		enqueue(t, c, stan(i+1), t0)
	}
	if got, _ := a.Queue().Claim(ctx, "card-a", t0.Add(time.Second), lease, 100); len(got) != 0 {
		t.Fatalf("claimed a live instance's items: %+v", got)
	}
	now := t0.Add(lease + time.Second)
	claimed := map[int64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, h := range []store.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				got, err := h.Queue().Claim(ctx, "card-a", now, lease, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					if prev, ok := claimed[it.ID]; ok && prev != h.Instance().Name {
						t.Errorf("item %d claimed by %s and %s", it.ID, prev, h.Instance().Name)
					}
					claimed[it.ID] = h.Instance().Name
				}
				mu.Unlock()
				// Settle what was claimed so the loop ends.
				for _, it := range got {
					if err := h.Queue().Result(ctx, it, store.SAFDone, now, ""); err != nil {
						t.Errorf("result of own claim %d: %v", it.ID, err)
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(claimed) != 20 {
		t.Fatalf("%d of 20 items claimed", len(claimed))
	}
	// A claim held by a live peer: its results are refused.
	it := enqueue(t, a, "000100", now)
	got, _ := a.Queue().Claim(ctx, "card-a", now, lease, 10)
	if len(got) != 1 {
		t.Fatalf("own claim: %+v", got)
	}
	if got, _ := b.Queue().Claim(ctx, "card-a", now.Add(time.Second), lease, 10); len(got) != 0 {
		t.Fatalf("claimed a live claim: %+v", got)
	}
	if err := b.Queue().Result(ctx, got[0], store.SAFDone, now, ""); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("result for a peer's claim: %v", err)
	}
	if err := b.Queue().AssignFirstAttempt(ctx, it.ID, "000001", "1125101700"); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("first attempt of a peer's claim: %v", err)
	}
	if pending, _ := a.Queue().List(ctx, store.SAFPending); len(pending) != 1 || pending[0].Attempts != 0 || pending[0].STAN != "" {
		t.Fatalf("a refused result was applied: %+v", pending)
	}
}

// testSAFLapsedLeaseIsTakenOver: an item whose claim (or retry lease)
// lapsed is claimed by another instance; the first can no longer record
// its result.
func testSAFLapsedLeaseIsTakenOver(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	it := enqueue(t, a, "000001", t0)
	got, _ := a.Queue().Claim(ctx, "card-a", t0, 5*time.Second, 10)
	if len(got) != 1 || !got[0].LeaseUntil.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("claim: %+v", got)
	}
	if err := a.Queue().AssignFirstAttempt(ctx, it.ID, "000321", "1125101700"); err != nil {
		t.Fatal(err)
	}
	if taken, _ := b.Queue().Claim(ctx, "card-a", t0.Add(4*time.Second), lease, 10); len(taken) != 0 {
		t.Fatalf("claimed before the lease lapsed: %+v", taken)
	}
	taken, err := b.Queue().Claim(ctx, "card-a", t0.Add(5*time.Second), lease, 10)
	if err != nil || len(taken) != 1 || taken[0].Owner != instB || taken[0].STAN != "000321" {
		t.Fatalf("take-over: %+v %v", taken, err)
	}
	if err := a.Queue().Result(ctx, got[0], store.SAFDone, t0, ""); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("result after losing the lease: %v", err)
	}
	// A retry keeps the item its owner's until next plus the lease.
	next := t0.Add(time.Minute)
	if err := b.Queue().Result(ctx, taken[0], store.SAFPending, next, "no answer"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Queue().Claim(ctx, "card-a", next.Add(lease-time.Millisecond), lease, 10); len(got) != 0 {
		t.Fatalf("a retry claimed by a peer inside its owner's lease: %+v", got)
	}
	if got, _ := b.Queue().Claim(ctx, "card-a", next, lease, 10); len(got) != 1 {
		t.Fatalf("owner's claim of its retry: %+v", got)
	}
}

package storetest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// testFaultFailsWritesWhole: through store.WithFault, a failed write is
// ErrUnavailable wrapping the cause and leaves nothing of itself (no row,
// no reservation, no SAF item, no claim, no token use); reads still work;
// writes succeed again once the fault heals.
func testFaultFailsWritesWhole(t *testing.T, open Open) {
	errFull := errors.New("disk full")
	var failing atomic.Value // string: the op to fail, "*" for all, "" for none
	failing.Store("")
	s := store.WithFault(as(open, instA), func(op string) error {
		if f := failing.Load().(string); f == "*" || f == op {
			return errFull
		}
		return nil
	})
	fail := func(op string, what string, write func() error) {
		t.Helper()
		failing.Store(op)
		defer failing.Store("")
		if err := write(); !errors.Is(err, errFull) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("%s under fault %s: %v", what, op, err)
		}
	}
	sold := approvedSale(t, s, "000001", store.Scope{TerminalID: "TERM0001"})
	fail(store.OpBegin, "begin", func() error { _, err := s.Sales().Begin(ctx, sale("000002")); return err })
	if _, err := s.Sales().FindByKey(ctx, sale("000002").Key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed begin left its row: %v", err)
	}
	fail(store.OpSet, "set", func() error {
		return s.Sales().Set(ctx, sold.ID, store.Update{State: store.Declined, RC: "51"}, "declined")
	})
	if got := get(t, s, sold.ID); got.State != store.Approved {
		t.Fatalf("a failed set was applied: %+v", got)
	}
	fail(store.OpCancel, "reserve", func() error {
		_, err := s.GiveBacks().ReserveCancel(ctx, cancelRow("000010", sold, 4000))
		return err
	})
	if got := get(t, s, sold.ID); got.Remaining != 10000 {
		t.Fatalf("a failed reservation took %d", 10000-got.Remaining)
	}
	c, err := s.GiveBacks().ReserveCancel(ctx, cancelRow("000011", sold, 4000))
	if err != nil {
		t.Fatal(err)
	}
	fail(store.OpRestore, "release", func() error { return s.GiveBacks().ReleaseCancel(ctx, c.ID, store.Answered, "96", "x") })
	if got := get(t, s, sold.ID); got.Remaining != 6000 {
		t.Fatalf("a failed release gave back: %d remains", got.Remaining)
	}
	fail(store.OpEnqueue, "enqueue", func() error {
		_, err := s.Queue().Enqueue(ctx, store.SAFItem{TxnID: sold.ID, Route: "card-a", Kind: store.KindReversal, Amount: 1, NextAt: t0, ExpiresAt: t0.Add(time.Hour)})
		return err
	})
	if n, _ := s.Queue().Depth(ctx); n != 0 {
		t.Fatalf("a failed enqueue queued %d", n)
	}
	it := enqueue(t, s, "000003", t0)
	fail(store.OpClaim, "claim", func() error { _, err := s.Queue().Claim(ctx, "card-a", t0, lease, 10); return err })
	if pending, _ := s.Queue().List(ctx, store.SAFPending); len(pending) != 1 || !pending[0].LeaseUntil.Equal(t0.Add(lease)) {
		t.Fatalf("a failed claim leased: %+v", pending)
	}
	fail(store.OpSAFResult, "SAF result", func() error { return s.Queue().Result(ctx, it, store.SAFDone, t0, "") })
	fail(store.OpSAFAssign, "first attempt", func() error { return s.Queue().AssignFirstAttempt(ctx, it.ID, "000001", "1125101700") })
	if pending, _ := s.Queue().List(ctx, store.SAFPending); len(pending) != 1 || pending[0].STAN != "" || pending[0].Attempts != 0 {
		t.Fatalf("a failed SAF write was applied: %+v", pending)
	}
	tok := token(tokens.OneTime, store.OneTimeToken)
	if err := s.Tokens().Insert(ctx, tok); err != nil {
		t.Fatal(err)
	}
	fail(store.OpTokenUse, "token use", func() error { _, err := s.Tokens().Use(ctx, tok.Token, t0); return err })
	if got, _ := s.Tokens().Get(ctx, tok.Token); got.UseCount != 0 {
		t.Fatalf("a failed use counted: %d", got.UseCount)
	}
	fail(store.OpHeartbeat, "heartbeat", func() error { return s.Instances().Heartbeat(ctx, t0) })
	fail(store.OpSequence, "sequence", func() error { _, err := s.Instances().ReserveBlock(ctx, "rrn", 10); return err })
	if first, err := s.Instances().ReserveBlock(ctx, "rrn", 10); err != nil || first != 1 {
		t.Fatalf("a failed reservation used numbers: first %d %v", first, err)
	}
	fail("*", "probe", func() error { return s.Sales().Probe(ctx, "test") })
	if err := s.Sales().Probe(ctx, "test"); err != nil {
		t.Fatalf("probe after healing: %v", err)
	}
	if err := s.Sales().Set(ctx, sold.ID, store.Update{State: store.Approved, RC: "00"}, "again"); err != nil {
		t.Fatalf("set after healing: %v", err)
	}
}

// testLostAcksAreSafeToRepeat: through store.WithLostAcks a write is
// applied but its caller hears a failure (a crash between the commit and
// the answer). Repeating it never applies it twice: a request is a
// duplicate with the stored row, a reservation is taken and given back
// once, a one-time token stays used, a sequence block is skipped, an item
// claimed is still this instance's.
func testLostAcksAreSafeToRepeat(t *testing.T, open Open) {
	errCrash := errors.New("connection reset after commit")
	var losing atomic.Value // string: the op whose acknowledgement is lost
	losing.Store("")
	base := as(open, instA)
	s := store.WithLostAcks(base, func(op string) error {
		if losing.CompareAndSwap(op, "") {
			return errCrash
		}
		return nil
	})
	lost := func(op, what string, write func() error) {
		t.Helper()
		losing.Store(op)
		if err := write(); !errors.Is(err, errCrash) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("%s with its acknowledgement lost: %v", what, err)
		}
	}
	lost(store.OpBegin, "begin", func() error { _, err := s.Sales().Begin(ctx, sale("000001")); return err })
	stored, err := s.Sales().Begin(ctx, sale("000001"))
	if !errors.Is(err, store.ErrDuplicate) || stored.ID == 0 {
		t.Fatalf("repeat of a begin whose acknowledgement was lost: %+v %v", stored, err)
	}
	sold := approvedSale(t, s, "000002", store.Scope{TerminalID: "TERM0001"})
	lost(store.OpCancel, "reserve", func() error {
		_, err := s.GiveBacks().ReserveCancel(ctx, cancelRow("000010", sold, 4000))
		return err
	})
	c, err := s.GiveBacks().ReserveCancel(ctx, cancelRow("000010", sold, 4000))
	if !errors.Is(err, store.ErrDuplicate) || get(t, s, sold.ID).Remaining != 6000 {
		t.Fatalf("repeat of a reservation: %v, %d remains", err, get(t, s, sold.ID).Remaining)
	}
	lost(store.OpRestore, "release", func() error { return s.GiveBacks().ReleaseCancel(ctx, c.ID, store.Answered, "96", "x") })
	if err := s.GiveBacks().ReleaseCancel(ctx, c.ID, store.Answered, "96", "x"); !errors.Is(err, store.ErrNotReserved) ||
		get(t, s, sold.ID).Remaining != 10000 {
		t.Fatalf("repeat of a release: %v, %d remains", err, get(t, s, sold.ID).Remaining)
	}
	tok := token(tokens.OneTime, store.OneTimeToken)
	if err := s.Tokens().Insert(ctx, tok); err != nil {
		t.Fatal(err)
	}
	lost(store.OpTokenUse, "token use", func() error { _, err := s.Tokens().Use(ctx, tok.Token, t0); return err })
	if _, err := s.Tokens().Use(ctx, tok.Token, t0); !errors.Is(err, store.ErrNotUsable) {
		t.Fatalf("a one-time token used again after a lost acknowledgement: %v", err)
	}
	var first int64
	lost(store.OpSequence, "sequence", func() (err error) { first, err = s.Instances().ReserveBlock(ctx, "rrn", 10); return err })
	if next, err := s.Instances().ReserveBlock(ctx, "rrn", 10); err != nil || next != 11 {
		t.Fatalf("block after a lost acknowledgement: first %d (%d) %v; want 11", next, first, err)
	}
	enqueue(t, s, "000003", t0.Add(-lease-time.Second)) // its enqueue lease over by t0
	lost(store.OpClaim, "claim", func() error { _, err := s.Queue().Claim(ctx, "card-a", t0, lease, 10); return err })
	if got, _ := as(open, instB).Queue().Claim(ctx, "card-a", t0.Add(time.Second), lease, 10); len(got) != 0 {
		t.Fatalf("an item claimed with a lost acknowledgement went to a peer: %+v", got)
	}
	if got, err := s.Queue().Claim(ctx, "card-a", t0.Add(time.Second), lease, 10); err != nil || len(got) != 1 {
		t.Fatalf("own claim again: %+v %v", got, err)
	}
}

package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/kbpay/switch/switch/store"
)

// testConcurrentBeginOneWins: 32 requests with one key recorded at once
// through two handles: exactly one is recorded, every other is
// ErrDuplicate with the winner's row (Begin alone decides; no look-up
// before it is needed).
func testConcurrentBeginOneWins(t *testing.T, open Open) {
	handles := []store.Store{as(open, instA), as(open, instB)}
	const n = 32
	type answer struct {
		row store.Txn
		err error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := sale("000777")
			r.ContentHash = "h-" + stan(i) // which request won shows in the stored row
			row, err := handles[i%2].Sales().Begin(ctx, r)
			answers[i] = answer{row, err}
		}()
	}
	wg.Wait()
	var winner store.Txn
	wins := 0
	for i, a := range answers {
		switch {
		case a.err == nil:
			wins++
			winner = a.row
			if a.row.ID == 0 || a.row.ContentHash != "h-"+stan(i) {
				t.Fatalf("request %d won with row %+v", i, a.row)
			}
		case !errors.Is(a.err, store.ErrDuplicate):
			t.Fatalf("request %d: %v, want recorded or ErrDuplicate", i, a.err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d requests with one key were recorded, want 1", wins, n)
	}
	for i, a := range answers {
		if a.err != nil && (a.row.ID != winner.ID || a.row.ContentHash != winner.ContentHash || a.row.Key != winner.Key) {
			t.Fatalf("duplicate %d answered with %+v, want the winner's row %+v", i, a.row, winner)
		}
	}
	if got := get(t, handles[0], winner.ID); got.ContentHash != winner.ContentHash || got.Owner != winner.Owner {
		t.Fatalf("stored row %+v, winner %+v", got, winner)
	}
}

// testRefusalsInAGroupFailOnlyThemselves: writes made at once (which a
// backend may commit together) where some are refused: each refused write
// gets its own typed error and leaves nothing; every other write is
// applied.
func testRefusalsInAGroupFailOnlyThemselves(t *testing.T, open Open) {
	s := as(open, instA)
	scope := store.Scope{Listener: "pos", TerminalID: "TERM0001", MerchantID: "M1"}
	const n = 8
	sales := make([]store.Txn, n)
	for i := range sales {
		sales[i] = approvedSale(t, s, stan(100+i), scope)
	}
	var wg sync.WaitGroup
	errs := make([][4]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Applied: a settlement, a new request, a cancel within the amount.
			errs[i][0] = s.Sales().Set(ctx, sales[i].ID, store.Update{State: store.Approved, RC: "00", Token: "tok-" + stan(i)}, "settled")
			_, errs[i][1] = s.Sales().Begin(ctx, sale(stan(200+i)))
			_, errs[i][2] = s.GiveBacks().ReserveCancel(ctx, cancelRow(stan(300+i), sales[i], 4000))
			// Refused: a cancel of more than remains.
			_, errs[i][3] = s.GiveBacks().ReserveCancel(ctx, cancelRow(stan(400+i), sales[i], 7000))
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Refused at the same time: a repeated request, an update of a missing row.
			if _, err := s.Sales().Begin(ctx, sale(stan(100+i))); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("repeat of sale %d: %v, want ErrDuplicate", i, err)
			}
			if err := s.Sales().Set(ctx, sales[n-1].ID+1000+int64(i), store.Update{State: store.Approved}, "x"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("update of a missing row: %v, want ErrNotFound", err)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		for k, err := range errs[i][:3] {
			if err != nil {
				t.Fatalf("sale %d, write %d: %v", i, k, err)
			}
		}
		if !errors.Is(errs[i][3], store.ErrExceeds) {
			t.Fatalf("sale %d: cancel of more than remains: %v, want ErrExceeds", i, errs[i][3])
		}
		if got := get(t, s, sales[i].ID); got.Token != "tok-"+stan(i) || got.Remaining != 6000 {
			t.Fatalf("sale %d after the group: %+v", i, got)
		}
		if _, err := s.Sales().FindByKey(ctx, sale(stan(200+i)).Key); err != nil {
			t.Fatalf("request %d not recorded: %v", i, err)
		}
		refused := cancelRow(stan(400+i), sales[i], 7000)
		if _, err := s.Sales().FindByKey(ctx, refused.Key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("refused cancel %d left a row: %v", i, err)
		}
	}
}

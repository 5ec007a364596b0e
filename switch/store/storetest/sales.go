package storetest

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// testBeginDuplicateAndOutcome: a request is recorded once; its repeat is
// ErrDuplicate with the stored row; its outcome and event are recorded;
// an update of a missing row is ErrNotFound.
func testBeginDuplicateAndOutcome(t *testing.T, open Open) {
	s := as(open, instA)
	a, err := s.Sales().Begin(ctx, sale("000001"))
	if err != nil || a.ID == 0 {
		t.Fatal(a, err)
	}
	dup, err := s.Sales().Begin(ctx, sale("000001"))
	if !errors.Is(err, store.ErrDuplicate) || dup.ID != a.ID {
		t.Fatalf("duplicate: %+v %v", dup, err)
	}
	rem := int64(10000)
	if err := s.Sales().Set(ctx, a.ID, store.Update{State: store.Approved, RC: "00", ApprovalCode: "000042", Remaining: &rem}, "approved"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Sales().FindByKey(ctx, a.Key)
	if err != nil || got.State != store.Approved || got.ApprovalCode != "000042" || got.Remaining != 10000 || got.Route != "card-a" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := s.Sales().Set(ctx, a.ID+999, store.Update{State: store.Approved}, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing row: %v", err)
	}
	if _, err := s.Sales().FindByKey(ctx, sale("000002").Key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := s.Sales().Event(ctx, a.ID, "late_answer", "late issuer answer 00"); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Lookup().Events(ctx, a.ID)
	if err != nil || !reflect.DeepEqual(ev, []string{"approved: approved", "late_answer: late issuer answer 00"}) {
		t.Fatalf("events %q %v", ev, err)
	}
	if err := s.Sales().Probe(ctx, "test"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	// Another live instance does not settle this one's row.
	if err := as(open, instB).Sales().Set(ctx, a.ID, store.Update{State: store.Declined, RC: "05"}, ""); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a peer settled this instance's row: %v", err)
	}
	// The same key recorded through another handle is a duplicate too.
	if _, err := as(open, instB).Sales().Begin(ctx, sale("000001")); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate through a second instance: %v", err)
	}
}

// testContentAndOwnerAreKept: every field of a row survives the round
// trip; the owner is the handle's instance; an update leaves unset fields
// as they were.
func testContentAndOwnerAreKept(t *testing.T, open Open) {
	s := as(open, instA)
	in := store.Txn{Key: store.Key{TerminalID: "TERM0009", STAN: "000123", TxTime: "1125101500", MTI: "0100"},
		Listener: "keyed", MerchantID: "M1", ProcCode: "000000", Amount: 4321, Currency: "840", MaskedPAN: "941000******0005",
		Token: tokens.Device, PANKey: "pan-data", PANKeyVersion: 3, PANCiphertext: []byte{1, 2, 3}, CardExpiry: "3012",
		Route: "card-b", IssuerSTAN: "000777", IssuerTxTime: "1125101501", RRN: "071234567890", State: store.Forwarded,
		AuthKey: "mac-a", ContentHash: "h1", Owner: "someone-else"}
	row, err := s.Sales().Begin(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, s, row.ID)
	want := in
	want.ID, want.Owner, want.CreatedAt, want.UpdatedAt = row.ID, instA, got.CreatedAt, got.UpdatedAt
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stored\n%+v\nwant\n%+v", got, want)
	}
	if row.Owner != instA || got.CreatedAt.IsZero() {
		t.Fatalf("owner %q created %v", row.Owner, got.CreatedAt)
	}
	if err := s.Sales().Set(ctx, row.ID, store.Update{State: store.Declined, RC: "51"}, ""); err != nil {
		t.Fatal(err)
	}
	got = get(t, s, row.ID)
	if got.State != store.Declined || got.RC != "51" || got.RRN != in.RRN || got.PANKeyVersion != 3 || string(got.PANCiphertext) != "\x01\x02\x03" {
		t.Fatalf("after a partial update: %+v", got)
	}
}

// testReserveAndReleaseCancel: the reservation and the cancel row are one
// step; a release gives the amount back and settles the row once.
func testReserveAndReleaseCancel(t *testing.T, open Open) {
	j := as(open, instA)
	g := j.GiveBacks()
	s := approvedSale(t, j, "000001", store.Scope{TerminalID: "TERM0001"})
	c, err := g.ReserveCancel(ctx, cancelRow("000010", s, 4000))
	if err != nil || c.ID == 0 || c.State != store.Forwarded {
		t.Fatalf("%+v %v", c, err)
	}
	if got := get(t, j, s.ID); got.Remaining != 6000 {
		t.Fatalf("%d remains after reserving 4000", got.Remaining)
	}
	if dup, err := g.ReserveCancel(ctx, cancelRow("000010", s, 1000)); !errors.Is(err, store.ErrDuplicate) || dup.ID != c.ID {
		t.Fatalf("repeat: %+v %v", dup, err)
	}
	if _, err := g.ReserveCancel(ctx, cancelRow("000011", s, 7000)); !errors.Is(err, store.ErrExceeds) {
		t.Fatalf("more than remains: %v", err)
	}
	if _, err := j.Sales().FindByKey(ctx, cancelRow("000011", s, 7000).Key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused reservation left its row: %v", err)
	}
	if _, err := g.ReserveCancel(ctx, cancelRow("000012", s, 0)); !errors.Is(err, store.ErrExceeds) {
		t.Fatalf("a reservation of nothing: %v", err)
	}
	if got := get(t, j, s.ID); got.Remaining != 6000 {
		t.Fatalf("%d remains after a refused and a repeated reservation", got.Remaining)
	}
	if err := g.ReleaseCancel(ctx, c.ID, store.Answered, "96", "route gone"); err != nil {
		t.Fatal(err)
	}
	got, row := get(t, j, s.ID), get(t, j, c.ID)
	if got.Remaining != 10000 || row.State != store.Answered || row.RC != "96" {
		t.Fatalf("after release: %d remains, cancel %s %s", got.Remaining, row.State, row.RC)
	}
	if err := g.ReleaseCancel(ctx, c.ID, store.Failed, "96", "again"); !errors.Is(err, store.ErrNotReserved) {
		t.Fatalf("second release: %v", err)
	}
	if got := get(t, j, s.ID); got.Remaining != 10000 {
		t.Fatalf("%d remains after a second release", got.Remaining)
	}
	// A cancel of a sale that is not approved reserves nothing.
	d, err := j.Sales().Begin(ctx, sale("000002"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.ReserveCancel(ctx, cancelRow("000013", d, 100)); !errors.Is(err, store.ErrExceeds) {
		t.Fatalf("cancel of a sale in flight: %v", err)
	}
}

// testConcurrentCancelsNeverExceed: 20 cancels of 3000 racing through two
// instances against a 10000 sale: exactly three succeed.
func testConcurrentCancelsNeverExceed(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	s := approvedSale(t, a, "000001", store.Scope{TerminalID: "TERM0001"})
	var ok atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(h store.Store) {
			defer wg.Done()
			<-start
			_, err := h.GiveBacks().ReserveCancel(ctx, cancelRow(stan(100+i), s, 3000))
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, store.ErrExceeds) {
				t.Error(err)
			}
		}([]store.Store{a, b}[i%2])
	}
	close(start)
	wg.Wait()
	got := get(t, a, s.ID)
	if ok.Load() != 3 || got.Remaining != 1000 {
		t.Fatalf("%d cancels succeeded, %d remains", ok.Load(), got.Remaining)
	}
}

// testFindersStayInScope: a cancel's and a refund's original is found only
// within its listener, terminal, merchant and MAC key; two sales with one
// RRN and approval code are ambiguous.
func testFindersStayInScope(t *testing.T, open Open) {
	j := as(open, instA)
	g := j.GiveBacks()
	home := store.Scope{Listener: "keyed", TerminalID: "TERM0001", MerchantID: "M1", AuthKey: "mac-a"}
	s := approvedSale(t, j, "000001", home)
	others := map[string]store.Scope{
		"listener": {Listener: "terminal", TerminalID: "TERM0001", MerchantID: "M1", AuthKey: "mac-a"},
		"terminal": {Listener: "keyed", TerminalID: "TERM0002", MerchantID: "M1", AuthKey: "mac-a"},
		"merchant": {Listener: "keyed", TerminalID: "TERM0001", MerchantID: "M2", AuthKey: "mac-a"},
		"MAC key":  {Listener: "keyed", TerminalID: "TERM0001", MerchantID: "M1", AuthKey: "mac-b"},
	}
	for name, sc := range others {
		if _, err := g.FindOriginal(ctx, sc, "0200", s.STAN, s.TxTime); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cancel from another %s found the sale: %v", name, err)
		}
		if _, err := g.FindSale(ctx, sc, s.RRN, s.ApprovalCode); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refund from another %s found the sale: %v", name, err)
		}
	}
	if got, err := g.FindOriginal(ctx, home, "0200", s.STAN, s.TxTime); err != nil || got.ID != s.ID {
		t.Fatalf("own cancel: %+v %v", got, err)
	}
	if got, err := g.FindSale(ctx, home, s.RRN, s.ApprovalCode); err != nil || got.ID != s.ID {
		t.Fatalf("own refund: %+v %v", got, err)
	}
	twin := sale("000002")
	twin.Listener, twin.MerchantID, twin.AuthKey = home.Listener, home.MerchantID, home.AuthKey
	twin.State, twin.RRN, twin.ApprovalCode = store.Approved, s.RRN, s.ApprovalCode
	if _, err := as(open, instB).Sales().Begin(ctx, twin); err != nil {
		t.Fatal(err)
	}
	if _, err := g.FindSale(ctx, home, s.RRN, s.ApprovalCode); !errors.Is(err, store.ErrAmbiguous) {
		t.Fatalf("two sales with one RRN: %v", err)
	}
}

// testLookups: Get, Between, InState, FindByIssuerSTAN and
// Reconciliations see every instance's rows.
func testLookups(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	before := time.Now().Add(-time.Minute)
	x, err := a.Sales().Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	y := sale("000002")
	y.IssuerSTAN = "000555"
	yr, err := b.Sales().Begin(ctx, y)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup().Get(ctx, yr.ID+999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
	rows, err := a.Lookup().Between(ctx, before, time.Now().Add(time.Minute))
	if err != nil || len(rows) != 2 || rows[0].ID != x.ID || rows[1].ID != yr.ID {
		t.Fatalf("between: %+v %v", rows, err)
	}
	if rows, _ := a.Lookup().Between(ctx, before.Add(-time.Hour), before); len(rows) != 0 {
		t.Fatalf("between before anything: %+v", rows)
	}
	if rows, err := a.Lookup().InState(ctx, store.Forwarded); err != nil || len(rows) != 2 {
		t.Fatalf("in state: %+v %v", rows, err)
	}
	if got, err := a.Lookup().FindByIssuerSTAN(ctx, "card-a", "000555"); err != nil || got.ID != yr.ID {
		t.Fatalf("by issuer STAN: %+v %v", got, err)
	}
	if _, err := a.Lookup().FindByIssuerSTAN(ctx, "card-b", "000555"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("issuer STAN on another route: %v", err)
	}
	for i, rc := range []string{"95", "00", "95"} {
		r := store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan(10 + i), TxTime: "1125101500", MTI: "0500"},
			State: store.Answered, RC: rc, Currency: "410"}
		if _, err := a.Sales().Begin(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := a.Lookup().Reconciliations(ctx, "95", 10)
	if err != nil || len(recs) != 2 || recs[0].STAN != stan(12) || recs[1].STAN != stan(10) {
		t.Fatalf("reconciliations: %+v %v", recs, err)
	}
	if recs, _ := a.Lookup().Reconciliations(ctx, "95", 1); len(recs) != 1 {
		t.Fatalf("limit: %+v", recs)
	}
}

// testTerminalTotalsPerCurrency: a terminal's sales, cancels and refunds in
// KRW (410) and USD (840) are totalled per currency; an agreed 0500 for one
// currency closes only that currency's batch, one without a currency closes
// all; a mismatched one closes nothing; other terminals never count.
func testTerminalTotalsPerCurrency(t *testing.T, open Open) {
	j := as(open, instA)
	n := 0
	add := func(terminal, mti, currency string, amount, original int64, state store.State, rc string) {
		t.Helper()
		n++
		row := store.Txn{Key: store.Key{TerminalID: terminal, STAN: stan(n), TxTime: "1201101500", MTI: mti},
			Currency: currency, Amount: amount, OriginalID: original, State: state, RC: rc}
		if _, err := j.Sales().Begin(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, want store.CurrencyTotals) {
		t.Helper()
		got, err := j.Lookup().TerminalTotals(ctx, "TERM0001")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: totals %+v, want %+v", what, got, want)
		}
	}
	add("TERM0001", "0200", "410", 10_000, 0, store.Approved, "00")
	add("TERM0001", "0200", "410", 3_000, 0, store.Approved, "00")
	add("TERM0001", "0200", "840", 10, 0, store.Approved, "00")
	add("TERM0001", "0200", "840", 99, 0, store.Declined, "51")
	add("TERM0001", "0400", "410", 1_000, 1, store.Answered, "00")
	add("TERM0001", "0200", "840", 4, 3, store.Answered, "00")
	add("TERM0002", "0200", "410", 777, 0, store.Approved, "00")
	check("sales in 410 and 840", store.CurrencyTotals{
		"410": {Sales: 2, SalesAmount: 13_000, Cancels: 1, CancelsAmount: 1_000},
		"840": {Sales: 1, SalesAmount: 10, Refunds: 1, RefundsAmount: 4},
	})
	add("TERM0001", "0500", "410", 0, 0, store.Answered, "95")
	check("after a mismatched KRW 0500", store.CurrencyTotals{
		"410": {Sales: 2, SalesAmount: 13_000, Cancels: 1, CancelsAmount: 1_000},
		"840": {Sales: 1, SalesAmount: 10, Refunds: 1, RefundsAmount: 4},
	})
	add("TERM0001", "0500", "410", 0, 0, store.Answered, "00")
	add("TERM0001", "0200", "410", 500, 0, store.Approved, "00")
	check("after an agreed KRW 0500", store.CurrencyTotals{
		"410": {Sales: 1, SalesAmount: 500},
		"840": {Sales: 1, SalesAmount: 10, Refunds: 1, RefundsAmount: 4},
	})
	add("TERM0001", "0500", "840", 0, 0, store.Answered, "00")
	check("after an agreed USD 0500", store.CurrencyTotals{"410": {Sales: 1, SalesAmount: 500}})
	add("TERM0001", "0500", "", 0, 0, store.Answered, "00")
	add("TERM0001", "0200", "840", 20, 0, store.Approved, "00")
	check("after an agreed 0500 without a currency", store.CurrencyTotals{"840": {Sales: 1, SalesAmount: 20}})
}

// Package storetest is the conformance suite every store.Store backend
// passes, like hsm/hsmtest for the HSM boundary: each operation's
// contract and typed errors, the atomic steps (a one-time token used
// once, an amount reserved once across racing cancels, a SAF item claimed
// by one instance, a lapsed lease taken over, sequence blocks that never
// overlap, an operator's SAF action) across two handles on the same data, and crash points through
// store.WithFault (a write that fails leaves nothing of itself) and
// store.WithLostAcks (a write applied whose caller heard a failure is safe
// to repeat).
//
// A backend's test calls
//
//	storetest.Run(t, func(t *testing.T) storetest.Open { ... })
//
// where the factory prepares fresh, empty backing data for one test and
// returns an Open that opens a new handle on that same data as the given
// instance (called several times: two handles are two switch instances).
// Open closes its handles when the test ends.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// Open opens a new handle, as instance inst, on one test's backing data.
type Open func(inst store.Instance) store.Store

// Factory prepares fresh backing data for one test.
type Factory func(t *testing.T) Open

// Run runs the whole suite against the backend factory makes.
func Run(t *testing.T, factory Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"BeginDuplicateAndOutcome", testBeginDuplicateAndOutcome},
		{"ContentAndOwnerAreKept", testContentAndOwnerAreKept},
		{"ConcurrentBeginOneWins", testConcurrentBeginOneWins},
		{"RefusalsInAGroupFailOnlyThemselves", testRefusalsInAGroupFailOnlyThemselves},
		{"ReserveAndReleaseCancel", testReserveAndReleaseCancel},
		{"ConcurrentCancelsNeverExceed", testConcurrentCancelsNeverExceed},
		{"FindersStayInScope", testFindersStayInScope},
		{"Lookups", testLookups},
		{"TerminalTotalsPerCurrency", testTerminalTotalsPerCurrency},
		{"SAFQueue", testSAFQueue},
		{"SAFClaimedByOneInstance", testSAFClaimedByOneInstance},
		{"SAFLapsedLeaseIsTakenOver", testSAFLapsedLeaseIsTakenOver},
		{"SearchAndHistory", testSearchAndHistory},
		{"SAFDesk", testSAFDesk},
		{"SAFDeskActionFailsWhole", testSAFDeskActionFailsWhole},
		{"HeartbeatsAndTakeOver", testHeartbeatsAndTakeOver},
		{"InFlightIsOwn", testInFlightIsOwn},
		{"SequenceBlocksNeverOverlap", testSequenceBlocksNeverOverlap},
		{"ZoneKeysLatestAcrossInstances", testZoneKeysLatestAcrossInstances},
		{"TokensInsertGetAndStatus", testTokensInsertGetAndStatus},
		{"TokenUseRules", testTokenUseRules},
		{"OneTimeTokenUsedOnce", testOneTimeTokenUsedOnce},
		{"FaultFailsWritesWhole", testFaultFailsWritesWhole},
		{"LostAcksAreSafeToRepeat", testLostAcksAreSafeToRepeat},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, factory(t)) })
	}
}

// Instance names the handles of the suite open.
const (
	instA = "switch-a"
	instB = "switch-b"
)

// lease is the suite's instance lease.
const lease = 10 * time.Second

func as(open Open, name string) store.Store {
	return open(store.Instance{Name: name, Lease: lease})
}

// t0 is the suite's clock for what takes an explicit time.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

var ctx = context.Background()

func sale(stan string) store.Txn {
	return store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"}, ProcCode: "000000",
		Amount: 10000, Currency: "410", Route: "card-a", State: store.Forwarded}
}

// approvedSale records an approved sale of 10000 in scope.
func approvedSale(t *testing.T, s store.Store, stan string, scope store.Scope) store.Txn {
	t.Helper()
	r := sale(stan)
	r.Listener, r.TerminalID, r.MerchantID, r.AuthKey = scope.Listener, scope.TerminalID, scope.MerchantID, scope.AuthKey
	r.State, r.RRN, r.ApprovalCode, r.Remaining, r.RC = store.Approved, "512345"+stan, "A1B2C3", r.Amount, "00"
	row, err := s.Sales().Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func cancelRow(stan string, orig store.Txn, amount int64) store.Txn {
	return store.Txn{Key: store.Key{TerminalID: orig.TerminalID, STAN: stan, TxTime: "1125101600", MTI: "0400"},
		Listener: orig.Listener, MerchantID: orig.MerchantID, AuthKey: orig.AuthKey, OriginalID: orig.ID, Amount: amount,
		Currency: orig.Currency, Route: orig.Route}
}

func get(t *testing.T, s store.Store, id int64) store.Txn {
	t.Helper()
	row, err := s.Lookup().Get(ctx, id)
	if err != nil {
		t.Fatalf("reading transaction %d: %v", id, err)
	}
	return row
}

func stan(i int) string { return fmt.Sprintf("%06d", i) }

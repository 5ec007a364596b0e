package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// testSearchAndHistory: the operators' look-up selects by each field,
// newest first, within a time window and a limit, across instances; the
// history carries each event's time.
func testSearchAndHistory(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	var ids []int64
	for i, s := range []struct {
		st                   store.Store
		stan, term, merchant string
		rrn, card, route     string
		ofFirst              bool // a cancel of the first
	}{
		{a, "000001", "TERM0001", "M1", "000000000001", "941000******0001", "card-a", false},
		{b, "000002", "TERM0001", "M2", "000000000002", "941000******0001", "card-a", false},
		{a, "000003", "TERM0002", "M1", "000000000003", "942000******0001", "card-b", true},
	} {
		tx := sale(s.stan)
		tx.TerminalID, tx.MerchantID, tx.RRN, tx.MaskedPAN, tx.Route = s.term, s.merchant, s.rrn, s.card, s.route
		if s.ofFirst {
			tx.OriginalID = ids[0]
		}
		got, err := s.st.Sales().Begin(ctx, tx)
		if err != nil {
			t.Fatal(i, err)
		}
		ids = append(ids, got.ID)
	}
	if err := b.Sales().Set(ctx, ids[1], store.Update{State: store.Approved, RC: "00"}, "approved"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tt := range []struct {
		name string
		f    store.TxnFilter
		want []int64
	}{
		{"everything, newest first", store.TxnFilter{}, []int64{ids[2], ids[1], ids[0]}},
		{"by RRN", store.TxnFilter{RRN: "000000000003"}, []int64{ids[2]}},
		{"by STAN and terminal", store.TxnFilter{STAN: "000002", TerminalID: "TERM0001"}, []int64{ids[1]}},
		{"by merchant", store.TxnFilter{MerchantID: "M1"}, []int64{ids[2], ids[0]}},
		{"by state", store.TxnFilter{State: store.Approved}, []int64{ids[1]}},
		{"by route", store.TxnFilter{Route: "card-b"}, []int64{ids[2]}},
		{"by response code", store.TxnFilter{RC: "00"}, []int64{ids[1]}},
		{"by masked card", store.TxnFilter{CardFirst6: "941000", CardLast4: "0001"}, []int64{ids[1], ids[0]}},
		{"by card's first six", store.TxnFilter{CardFirst6: "942000"}, []int64{ids[2]}},
		{"by card's last four", store.TxnFilter{CardLast4: "0002"}, nil},
		{"cancels of a sale", store.TxnFilter{OriginalID: ids[0]}, []int64{ids[2]}},
		{"limit", store.TxnFilter{Limit: 1}, []int64{ids[2]}},
		{"time window excludes", store.TxnFilter{From: now.Add(time.Hour)}, nil},
		{"time window before", store.TxnFilter{To: now.Add(-time.Hour)}, nil},
		{"time window includes", store.TxnFilter{From: now.Add(-time.Hour), To: now.Add(time.Hour), TerminalID: "TERM0002"}, []int64{ids[2]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Lookup().Search(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, g := range got {
				gotIDs = append(gotIDs, g.ID)
			}
			if !slices.Equal(gotIDs, tt.want) {
				t.Fatalf("got %v, want %v", gotIDs, tt.want)
			}
		})
	}
	h, err := a.Lookup().History(ctx, ids[1])
	if err != nil || len(h) != 1 || h[0].Kind != "approved" || h[0].At.IsZero() || h[0].At.After(time.Now().Add(time.Minute)) {
		t.Fatalf("history %+v %v", h, err)
	}
	if h, err := a.Lookup().History(ctx, ids[0]); err != nil || len(h) != 0 {
		t.Fatalf("history of a transaction without events: %+v %v", h, err)
	}
}

// testSAFDesk: the operator's retry-now and resolve act only in the states
// they apply to (store.ErrSAFState), need a reason to resolve, leave who
// and when in the history; Search, Get and Counts follow. Another instance
// than the item's owner may act on it.
func testSAFDesk(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	desk := b.SAFDesk()
	queued := enqueue(t, a, "000009", time.Now().Add(time.Hour))
	id := queued.ID
	if _, err := desk.Resolve(ctx, id, "alice", "called the issuer"); !errors.Is(err, store.ErrSAFState) {
		t.Fatalf("resolving a pending item: %v, want ErrSAFState", err)
	}
	it, err := desk.RetryNow(ctx, id, "alice", time.Hour)
	if err != nil || it.State != store.SAFPending || it.NextAt.After(time.Now()) || it.Owner != instA {
		t.Fatalf("retry now of a pending item: %+v %v", it, err)
	}
	if err := a.Queue().Result(ctx, it, store.SAFReview, time.Now(), "expired unacknowledged"); err != nil {
		t.Fatal(err)
	}
	if _, err := desk.Resolve(ctx, id, "alice", " "); !errors.Is(err, store.ErrNoReason) {
		t.Fatalf("resolved without a reason: %v", err)
	}
	if it, _ := desk.Get(ctx, id); it.State != store.SAFReview {
		t.Fatalf("an item resolved without a reason is %s", it.State)
	}
	it, err = desk.RetryNow(ctx, id, "bob", time.Hour)
	if err != nil || it.State != store.SAFPending || !it.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("retry now of a review item: %+v %v", it, err)
	}
	if err := a.Queue().Result(ctx, it, store.SAFReview, time.Now(), "expired unacknowledged"); err != nil {
		t.Fatal(err)
	}
	it, err = desk.Resolve(ctx, id, "carol", "refunded by the issuer, ticket 42")
	if err != nil || it.State != store.SAFResolved || it.LastError != "resolved by carol: refunded by the issuer, ticket 42" {
		t.Fatalf("resolve: %+v %v", it, err)
	}
	if _, err := desk.RetryNow(ctx, id, "bob", time.Hour); !errors.Is(err, store.ErrSAFState) {
		t.Fatalf("retry of a resolved item: %v, want ErrSAFState", err)
	}
	if _, err := desk.Resolve(ctx, id, "carol", "again"); !errors.Is(err, store.ErrSAFState) {
		t.Fatalf("resolving a resolved item: %v, want ErrSAFState", err)
	}
	for name, err := range map[string]error{
		"resolve": func() error { _, err := desk.Resolve(ctx, id+999, "x", "y"); return err }(),
		"retry":   func() error { _, err := desk.RetryNow(ctx, id+999, "x", time.Hour); return err }(),
		"get":     func() error { _, err := desk.Get(ctx, id+999); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s of a missing item: %v, want ErrNotFound", name, err)
		}
	}
	other := enqueue(t, a, "000010", time.Now().Add(time.Hour))
	counts, err := desk.Counts(ctx)
	if err != nil || counts[store.SAFResolved] != 1 || counts[store.SAFPending] != 1 || counts[store.SAFReview] != 0 ||
		counts[store.SAFDone] != 0 || len(counts) != len(store.SAFStates) {
		t.Fatalf("counts %v %v", counts, err)
	}
	for _, tt := range []struct {
		name string
		f    store.SAFFilter
		want []int64
	}{
		{"everything, oldest first", store.SAFFilter{}, []int64{id, other.ID}},
		{"by state and route", store.SAFFilter{State: store.SAFResolved, Route: "card-a"}, []int64{id}},
		{"other route", store.SAFFilter{Route: "card-b"}, nil},
		{"by kind", store.SAFFilter{Kind: store.KindRefund}, nil},
		{"by transaction", store.SAFFilter{TxnID: other.TxnID}, []int64{other.ID}},
		{"limit", store.SAFFilter{Limit: 1}, []int64{id}},
	} {
		items, err := desk.Search(ctx, tt.f)
		var got []int64
		for _, it := range items {
			got = append(got, it.ID)
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Fatalf("search %s: %v %v, want %v", tt.name, got, err, tt.want)
		}
	}
	h, err := a.Lookup().History(ctx, queued.TxnID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range h {
		kinds = append(kinds, e.Kind)
	}
	want := "reversal_queued reversal_retry_now reversal_manual_review reversal_retry_now reversal_manual_review reversal_resolved"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("history %s, want %s", got, want)
	}
	if last := h[len(h)-1].Detail; !strings.Contains(last, "carol") || !strings.Contains(last, "ticket 42") {
		t.Fatalf("the resolution's event %q does not say who and why", last)
	}
}

// testSAFDeskActionFailsWhole: an operator action whose write fails
// changes neither the item nor the history.
func testSAFDeskActionFailsWhole(t *testing.T, open Open) {
	a := as(open, instA)
	it := enqueue(t, a, "000011", time.Now().Add(time.Hour))
	faulty := store.WithFault(a, func(op string) error {
		if op == store.OpSAFAction {
			return errors.New("disk full")
		}
		return nil
	})
	if _, err := faulty.SAFDesk().RetryNow(ctx, it.ID, "alice", time.Hour); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("faulted retry: %v, want ErrUnavailable", err)
	}
	got, err := a.SAFDesk().Get(ctx, it.ID)
	if err != nil || got.NextAt.Sub(it.NextAt).Abs() > time.Millisecond || got.State != store.SAFPending {
		t.Fatalf("after a failed retry: %+v %v (queued due %v)", got, err, it.NextAt)
	}
	if ev, _ := a.Lookup().Events(ctx, it.TxnID); len(ev) != 1 {
		t.Fatalf("history after a failed action: %v", ev)
	}
}

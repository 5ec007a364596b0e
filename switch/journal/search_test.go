package journal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSearchTxns(t *testing.T) {
	j := open(t, false)
	ctx := context.Background()
	var ids []int64
	for i, s := range []struct{ stan, term, merchant, rrn string }{
		{"000001", "TERM0001", "M1", "000000000001"},
		{"000002", "TERM0001", "M2", "000000000002"},
		{"000003", "TERM0002", "M1", "000000000003"},
	} {
		tx := sale(s.stan)
		tx.TerminalID, tx.MerchantID, tx.RRN, tx.MaskedPAN = s.term, s.merchant, s.rrn, "941000******0001"
		got, err := j.Begin(ctx, tx)
		if err != nil {
			t.Fatal(i, err)
		}
		ids = append(ids, got.ID)
	}
	if err := j.Set(ctx, ids[1], Update{State: Approved, RC: "00"}, "approved"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    TxnFilter
		want []int64
	}{
		{"everything, newest first", TxnFilter{}, []int64{ids[2], ids[1], ids[0]}},
		{"by RRN", TxnFilter{RRN: "000000000003"}, []int64{ids[2]}},
		{"by STAN and terminal", TxnFilter{STAN: "000002", TerminalID: "TERM0001"}, []int64{ids[1]}},
		{"by merchant", TxnFilter{MerchantID: "M1"}, []int64{ids[2], ids[0]}},
		{"by state", TxnFilter{State: Approved}, []int64{ids[1]}},
		{"limit", TxnFilter{Limit: 1}, []int64{ids[2]}},
		{"time window excludes", TxnFilter{From: time.Now().Add(time.Hour)}, nil},
		{"time window includes", TxnFilter{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), TerminalID: "TERM0002"}, []int64{ids[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := j.SearchTxns(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, g := range got {
				gotIDs = append(gotIDs, g.ID)
			}
			if len(gotIDs) != len(tt.want) {
				t.Fatalf("got %v, want %v", gotIDs, tt.want)
			}
			for i := range gotIDs {
				if gotIDs[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", gotIDs, tt.want)
				}
			}
		})
	}
	h, err := j.History(ctx, ids[1])
	if err != nil || len(h) != 1 || h[0].Kind != "approved" || h[0].At.IsZero() {
		t.Fatalf("history %+v %v", h, err)
	}
}

func TestSAFOperatorActions(t *testing.T) {
	j := open(t, false)
	ctx := context.Background()
	tx, err := j.Begin(ctx, sale("000009"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := j.Enqueue(ctx, SAFItem{TxnID: tx.ID, Route: "card-a", Kind: KindReversal, Amount: 10000,
		NextAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.SAFResolve(ctx, id, "alice", "called the issuer"); !errors.Is(err, ErrSAFState) {
		t.Fatalf("resolving a pending item: %v, want ErrSAFState", err)
	}
	it, err := j.SAFRetryNow(ctx, id, "alice", time.Hour)
	if err != nil || it.State != SAFPending || it.NextAt.After(time.Now()) {
		t.Fatalf("retry now of a pending item: %+v %v", it, err)
	}
	if err := j.SAFResult(ctx, it, SAFReview, time.Now(), "expired unacknowledged"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.SAFResolve(ctx, id, "alice", " "); err == nil {
		t.Fatal("resolved without a reason")
	}
	it, err = j.SAFRetryNow(ctx, id, "bob", time.Hour)
	if err != nil || it.State != SAFPending || !it.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("retry now of a review item: %+v %v", it, err)
	}
	if err := j.SAFResult(ctx, it, SAFReview, time.Now(), "expired unacknowledged"); err != nil {
		t.Fatal(err)
	}
	it, err = j.SAFResolve(ctx, id, "carol", "refunded by the issuer, ticket 42")
	if err != nil || it.State != SAFResolved || it.LastError != "resolved by carol: refunded by the issuer, ticket 42" {
		t.Fatalf("resolve: %+v %v", it, err)
	}
	if _, err := j.SAFRetryNow(ctx, id, "bob", time.Hour); !errors.Is(err, ErrSAFState) {
		t.Fatalf("retry of a resolved item: %v", err)
	}
	if _, err := j.SAFResolve(ctx, 999, "x", "y"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing item: %v", err)
	}
	counts, err := j.SAFCounts(ctx)
	if err != nil || counts[SAFResolved] != 1 || counts[SAFPending] != 0 || len(counts) != len(SAFStates) {
		t.Fatalf("counts %v %v", counts, err)
	}
	items, err := j.SAFSearch(ctx, SAFFilter{State: SAFResolved, Route: "card-a"})
	if err != nil || len(items) != 1 {
		t.Fatalf("search %v %v", items, err)
	}
	h, _ := j.History(ctx, tx.ID)
	var kinds []string
	for _, e := range h {
		kinds = append(kinds, e.Kind)
	}
	want := "reversal_queued reversal_retry_now reversal_manual_review reversal_retry_now reversal_manual_review reversal_resolved"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("history %s, want %s", got, want)
	}
}

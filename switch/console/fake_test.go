package console

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// fakeSource is a Source with canned answers that records what it was
// asked.
type fakeSource struct {
	mu       sync.Mutex
	filters  []store.TxnFilter
	txns     []store.Txn
	saf      map[int64]store.SAFItem
	resolved []string // "id who reason"
	tokens   map[string]store.TokenRecord
	ov       Overview
}

func newFake() *fakeSource {
	return &fakeSource{
		txns: []store.Txn{{ID: 7, Key: store.Key{TerminalID: "TERM0001", STAN: "000123", MTI: "0200"}, MerchantID: "MERCHANT0000001",
			MaskedPAN: "941000******0005", Amount: 1500, Currency: "410", RRN: "600000000001", RC: "00", State: store.Approved, Route: "card-a"}},
		saf: map[int64]store.SAFItem{3: {ID: 3, TxnID: 7, Route: "card-a", Kind: store.KindReversal, State: store.SAFReview,
			LastError: "issuer silent for card " + fullPAN}},
		tokens: map[string]store.TokenRecord{token: {Token: token, MaskedPAN: "941000******0005", Status: store.TokenActive, Kind: store.DeviceToken}},
		ov: Overview{Instance: "sw-1", Ready: true, Journal: "ok",
			Listeners: []ListenerState{{Name: "terminal", Addr: "127.0.0.1:1", Connections: 2, InFlight: 1, Requests: 10}},
			Routes: []RouteState{{Name: "card-a", BINs: []string{"9410"}, LinksUp: 1, Links: 1, Requests: 10, Sales: 10, Approved: 9},
				{Name: "card-b", BINs: []string{"9420"}, LinksUp: 0, Links: 2}},
			SAF: map[string]int{store.SAFPending: 0, store.SAFReview: 1, store.SAFDone: 4, store.SAFResolved: 0}},
	}
}

func (f *fakeSource) Overview(context.Context) (Overview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ov, nil
}

func (f *fakeSource) Search(_ context.Context, flt store.TxnFilter) ([]store.Txn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	var out []store.Txn
	for _, t := range f.txns {
		if (flt.RRN == "" || flt.RRN == t.RRN) && (flt.STAN == "" || flt.STAN == t.STAN) &&
			(flt.TerminalID == "" || flt.TerminalID == t.TerminalID) && (flt.MerchantID == "" || flt.MerchantID == t.MerchantID) &&
			(flt.CardFirst6 == "" || strings.HasPrefix(t.MaskedPAN, flt.CardFirst6)) &&
			(flt.CardLast4 == "" || strings.HasSuffix(t.MaskedPAN, flt.CardLast4)) && flt.OriginalID == 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeSource) Transaction(_ context.Context, id int64) (Transaction, error) {
	for _, t := range f.txns {
		if t.ID == id {
			return Transaction{Txn: t, History: []store.Event{{At: time.Now(), Kind: "received", Detail: "card " + fullPAN},
				{At: time.Now(), Kind: "approved", Detail: "00"}}, SAF: []store.SAFItem{f.saf[3]}}, nil
		}
	}
	return Transaction{}, store.ErrNotFound
}

func (f *fakeSource) SAF(_ context.Context, flt store.SAFFilter) ([]store.SAFItem, map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.SAFItem
	for _, it := range f.saf {
		if flt.State == "" || flt.State == it.State {
			out = append(out, it)
		}
	}
	return out, f.ov.SAF, nil
}

func (f *fakeSource) Retry(_ context.Context, id int64, _ string) (store.SAFItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.saf[id]
	if !ok {
		return it, store.ErrNotFound
	}
	it.State = store.SAFPending
	f.saf[id] = it
	return it, nil
}

func (f *fakeSource) Resolve(_ context.Context, id int64, who, reason string) (store.SAFItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it, ok := f.saf[id]
	switch {
	case !ok:
		return it, store.ErrNotFound
	case it.State != store.SAFReview:
		return it, store.ErrSAFState
	case reason == "":
		return it, store.ErrNoReason
	}
	it.State = store.SAFResolved
	f.saf[id] = it
	f.resolved = append(f.resolved, who+" | "+reason)
	return it, nil
}

func (f *fakeSource) Token(_ context.Context, tok string) (store.TokenRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.tokens[tok]
	if !ok {
		return rec, store.ErrNotFound
	}
	return rec, nil
}

func (f *fakeSource) SetTokenStatus(_ context.Context, tok string, to store.TokenStatus) (store.TokenRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.tokens[tok]
	if !ok {
		return rec, store.ErrNotFound
	}
	rec.Status = to
	f.tokens[tok] = rec
	return rec, nil
}

package saf

import (
	"context"
	"github.com/kbpay/switch/internal/testnet"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
	"github.com/kbpay/switch/switch/store/embedded/embeddedtest"
)

// testPool is a route link's STAN pool: how many times each STAN is owned.
type testPool struct {
	mu    sync.Mutex
	owned map[string]int
}

func newTestPool() *testPool { return &testPool{owned: map[string]int{}} }

func (p *testPool) Hold(stan string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owned[stan]++
}

func (p *testPool) Release(stan string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owned[stan] <= 1 {
		delete(p.owned, stan)
	} else {
		p.owned[stan]--
	}
}

// Owned is how many times stan is owned.
func (p *testPool) Owned(stan string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.owned[stan]
}

// testRoutes are routes by name, each with its STAN pool and no link:
// every attempt fails before it leaves.
type testRoutes map[string]*testPool

func (r testRoutes) Route(string) (pipeline.IssuerRoute, bool) { return pipeline.IssuerRoute{}, false }
func (r testRoutes) Timeout(string) time.Duration              { return 0 }

func (r testRoutes) STANs(name string) (STANs, bool) {
	p, ok := r[name]
	return p, ok
}

// testConfig looks for due items every 50 ms and backs off at most a
// minute.
var testConfig = Config{Interval: 50 * time.Millisecond, WorkersPerRoute: 4, RetryMax: time.Minute, ReviewExpiry: time.Hour, Lease: 10 * time.Second}

// testPeer opens instance name's handle on the store in folder dir.
func testPeer(t *testing.T, dir, name string) store.Store {
	t.Helper()
	return embeddedtest.OpenIn(t, dir, func(o *embedded.Options) { o.Instance = store.Instance{Name: name, Lease: 10 * time.Second} })
}

// testInstance is a worker of instance name on the store in folder dir,
// over routes, logging to log; the store handle is returned too.
func testInstance(t *testing.T, dir, name string, routes testRoutes, log *zap.Logger) (*Worker, store.Store) {
	t.Helper()
	st := testPeer(t, dir, name)
	return New(Deps{Config: testConfig, Log: log, Store: st, Routes: routes}, prometheus.NewRegistry()), st
}

// reviewItem journals a timed-out sale on route "fast" and a give-back of
// it in manual review that carries STAN stan (its first attempt's).
func reviewItem(t *testing.T, st store.Store, stan string) store.SAFItem {
	t.Helper()
	ctx := t.Context()
	row, err := st.Sales().Begin(ctx, store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"},
		ProcCode: "000000", Amount: 10000, Currency: "410", Route: "fast", State: store.TimedOut})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id, err := st.Queue().Enqueue(ctx, store.SAFItem{TxnID: row.ID, Route: "fast", Kind: store.KindReversal, Amount: 10000,
		NextAt: now, ExpiresAt: now.Add(time.Hour), STAN: stan, TxTime: "1125101501"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := st.Queue().Claim(ctx, "fast", now.Add(time.Second), time.Minute, 10)
	if err != nil || len(items) != 1 || items[0].ID != id {
		t.Fatalf("claim: %+v %v", items, err)
	}
	if err := st.Queue().Result(ctx, items[0], store.SAFReview, now, "expired unacknowledged"); err != nil {
		t.Fatal(err)
	}
	it, err := st.SAFDesk().Get(ctx, id)
	if err != nil || it.State != store.SAFReview {
		t.Fatalf("item %d: %+v %v, want in review", id, it, err)
	}
	return it
}

// eventually polls cond until it holds or 10 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testnet.Eventually(t, 10*time.Second, what, cond)
}

// start runs the workers (with senders for routes) until the test ends.
func start(t *testing.T, routes []string, ws ...*Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	for _, w := range ws {
		w.Start(ctx, routes)
	}
	t.Cleanup(func() {
		cancel()
		for _, w := range ws {
			w.Wait()
		}
	})
}

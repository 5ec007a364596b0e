package recovery

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/journalgate"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded/embeddedtest"
)

// testKeeper is a keeper on a journal of its own, with routes "fast"
// (400 ms) and "slow" (10 s), and the journal gate and store it uses.
type testKeeper struct {
	*Keeper
	guard *journalgate.Guard
	store store.Store
}

// useStore makes the keeper use st from now on.
func (k *testKeeper) useStore(st store.Store) { k.store, k.Keeper.store = st, st }

func sweepSwitch(t *testing.T) *testKeeper {
	t.Helper()
	return sweepSwitchIn(t, t.TempDir())
}

// sweepSwitchIn is sweepSwitch on the store in folder dir, as instance
// "test" (other handles on dir are its peers).
func sweepSwitchIn(t *testing.T, dir string) *testKeeper {
	t.Helper()
	j := embeddedtest.OpenIn(t, dir)
	g := journalgate.New(zap.NewNop(), prometheus.NewRegistry())
	ledger := pipeline.LedgerOn(j)
	ledger.ReversalExpiry = time.Hour
	routes := []config.IssuerRoute{{Name: "fast", Timeout: 400 * time.Millisecond}, {Name: "slow", Timeout: 10 * time.Second}}
	k := New(Deps{Log: zap.NewNop(), Store: j, Ledger: ledger, Gate: g, Routes: func() []config.IssuerRoute { return routes }})
	return &testKeeper{Keeper: k, guard: g, store: j}
}

func TestInFlightLimit(t *testing.T) {
	s := sweepSwitch(t)
	for _, tt := range []struct {
		route string
		want  time.Duration
	}{
		{"fast", 400*time.Millisecond + 5*time.Second}, // margin at least 5 s
		{"slow", 20 * time.Second},                     // margin the timeout itself
		{"removed", 20 * time.Second},                  // the longest configured
	} {
		if got := s.inFlightLimit(tt.route); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.route, got, tt.want)
		}
	}
}

// TestSweepRecoversOnlyWhatIsLeftInFlight: of the rows left forwarded,
// the sweep reverses a sale (and queues a cancel's repeat) older than its
// route's limit, and leaves alone a younger one, one on a slower route,
// one whose outcome is held, a cancel that was never sent, and one this
// process still works on until it is done with it.
func TestSweepRecoversOnlyWhatIsLeftInFlight(t *testing.T) {
	s := sweepSwitch(t)
	ctx := context.Background()
	// begin journals a request on route as sent (issuer STAN "9" + the
	// last five digits of its STAN) or not yet sent (no issuer STAN).
	begin := func(stan, route string, originalID int64, sent bool) store.Txn {
		t.Helper()
		row := store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"},
			ProcCode: "000000", Amount: 10000, Currency: "410", Route: route, State: store.Forwarded, OriginalID: originalID,
			IssuerSTAN: "9" + stan[1:]}
		if !sent {
			row.IssuerSTAN = ""
		}
		if originalID > 0 {
			row.MTI = "0400"
		}
		stored, err := s.store.Sales().Begin(ctx, row)
		if err != nil {
			t.Fatal(err)
		}
		return stored
	}
	old := begin("000001", "fast", 0, true)
	oldCancel := begin("000002", "fast", old.ID, true)
	unsentCancel := begin("000007", "fast", old.ID, false)
	worked := begin("000003", "fast", 0, true)
	done := s.guard.Track(worked.ID)
	held := begin("000006", "fast", 0, true)
	s.guard.Hold(&pipeline.Held{Row: held, Reverse: true}, errors.New("disk full"))
	// The younger rows are journaled a clear 50 ms later (CreatedAt has
	// millisecond precision).
	for time.Since(worked.CreatedAt) < 50*time.Millisecond {
		time.Sleep(5 * time.Millisecond)
	}
	young := begin("000004", "fast", 0, true)
	slow := begin("000005", "slow", 0, true)

	now := worked.CreatedAt.Add(s.inFlightLimit("fast") + 10*time.Millisecond)
	if err := s.Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	wantState := func(row store.Txn, want store.State) {
		t.Helper()
		got, err := s.store.Lookup().Get(ctx, row.ID)
		if err != nil || got.State != want {
			t.Errorf("transaction %s: %s %v, want %s", row.STAN, got.State, err, want)
		}
	}
	wantState(old, store.TimedOut)
	wantState(oldCancel, store.Answered)
	for _, r := range []store.Txn{young, slow, worked, held, unsentCancel} {
		wantState(r, store.Forwarded)
	}
	queued := func() map[int64]store.SAFItem {
		items, err := s.store.Queue().List(ctx, store.SAFPending)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]store.SAFItem{}
		for _, it := range items {
			m[it.TxnID] = it
		}
		return m
	}
	q := queued()
	if len(q) != 2 || q[old.ID].Kind != store.KindReversal || q[old.ID].Amount != 10000 || q[oldCancel.ID].Kind != store.KindReversal {
		t.Fatalf("queued after the sweep: %+v", q)
	}

	// Once this process is done with it, a row still forwarded is lost.
	done()
	if err := s.Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	wantState(worked, store.TimedOut)
	wantState(young, store.Forwarded)
	wantState(held, store.Forwarded)
	if q := queued(); len(q) != 3 || q[worked.ID].Kind != store.KindReversal {
		t.Fatalf("queued after the second sweep: %+v", q)
	}
}

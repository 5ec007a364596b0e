package recovery

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
	"github.com/kbpay/switch/switch/store/embedded/embeddedtest"
)

// peerOf opens another instance, name, on the switch's store folder dir.
func peerOf(t *testing.T, dir, name string) store.Store {
	t.Helper()
	return embeddedtest.OpenIn(t, dir, func(o *embedded.Options) { o.Instance = store.Instance{Name: name, Lease: 10 * time.Second} })
}

// peerWork journals, as peer p, a sale on route "fast" that was sent and
// is left forwarded, an approved sale, and a cancel of it reserved but
// never sent, and queues a reversal of the first.
func peerWork(t *testing.T, p store.Store, prefix string, at time.Time) (inFlight, approved, unsentCancel store.Txn, item int64) {
	t.Helper()
	ctx := context.Background()
	row := func(stan string, st store.State) store.Txn {
		return store.Txn{Key: store.Key{TerminalID: "TERM" + prefix, STAN: stan, TxTime: "1125101500", MTI: "0200"},
			ProcCode: "000000", Amount: 10000, Currency: "410", Route: "fast", State: st, IssuerSTAN: "9" + stan[1:]}
	}
	var err error
	if inFlight, err = p.Sales().Begin(ctx, row("000001", store.Forwarded)); err != nil {
		t.Fatal(err)
	}
	a := row("000002", store.Approved)
	a.RC, a.Remaining = "00", a.Amount
	if approved, err = p.Sales().Begin(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := store.Txn{Key: store.Key{TerminalID: a.TerminalID, STAN: "000003", TxTime: "1125101600", MTI: "0400"},
		Amount: 4000, Currency: "410", Route: "fast", OriginalID: approved.ID}
	if unsentCancel, err = p.GiveBacks().ReserveCancel(ctx, c); err != nil {
		t.Fatal(err)
	}
	if item, err = p.Queue().Enqueue(ctx, store.SAFItem{TxnID: approved.ID, Route: "fast", Kind: store.KindReversal, Amount: 1,
		NextAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return inFlight, approved, unsentCancel, item
}

// TestSweepLeavesALivePeersWorkAndTakesOverALapsedOnes: the in-flight
// sweep never touches the work of a peer whose heartbeat is current, even
// long past its route's timeout; the work of a peer whose heartbeat lapsed
// becomes this instance's and is recovered at once: its sale reversed, its
// cancel that never left released, its SAF items claimable here.
func TestSweepLeavesALivePeersWorkAndTakesOverALapsedOnes(t *testing.T) {
	dir := t.TempDir()
	s := sweepSwitchIn(t, dir)
	ctx := context.Background()
	now := time.Now().Add(time.Hour) // far past every route limit
	live, dead := peerOf(t, dir, "peer-live"), peerOf(t, dir, "peer-dead")
	liveSale, _, liveCancel, liveItem := peerWork(t, live, "0001", now)
	deadSale, deadApproved, deadCancel, deadItem := peerWork(t, dead, "0002", now)
	if err := live.Instances().Heartbeat(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := dead.Instances().Heartbeat(ctx, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	if err := s.Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	state := func(id int64) store.Txn {
		t.Helper()
		got, err := s.store.Lookup().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, r := range []store.Txn{liveSale, liveCancel} {
		if got := state(r.ID); got.State != store.Forwarded || got.Owner != "peer-live" {
			t.Errorf("a live peer's transaction %d was touched: %s, owner %q", r.ID, got.State, got.Owner)
		}
	}
	if got := state(deadSale.ID); got.State != store.TimedOut || got.Owner != "test" {
		t.Errorf("a lapsed peer's sale left in flight: %s, owner %q; want timed out, taken over", got.State, got.Owner)
	}
	if got := state(deadCancel.ID); got.State != store.Failed {
		t.Errorf("a lapsed peer's unsent cancel: %s, want failed (released)", got.State)
	}
	if got := state(deadApproved.ID); got.Remaining != 10000 {
		t.Errorf("%d remains of the lapsed peer's sale, want 10000 (its unsent cancel released)", got.Remaining)
	}
	owners := map[int64]string{}
	reversed := false
	items, _ := s.store.Queue().List(ctx, store.SAFPending)
	for _, it := range items {
		owners[it.ID] = it.Owner
		reversed = reversed || it.TxnID == deadSale.ID
	}
	if owners[liveItem] != "peer-live" || owners[deadItem] != "test" || !reversed {
		t.Errorf("SAF after the sweep: owners %v, reversal of the lapsed peer's sale queued: %v", owners, reversed)
	}
}

// TestRecoveryAtStartLeavesALivePeersWork: recovery at start reverses what
// this instance (and a lapsed peer) left in flight, never what a live
// peer has in flight at that moment.
func TestRecoveryAtStartLeavesALivePeersWork(t *testing.T) {
	dir := t.TempDir()
	s := sweepSwitchIn(t, dir)
	ctx := context.Background()
	live, dead := peerOf(t, dir, "peer-live"), peerOf(t, dir, "peer-dead")
	liveSale, _, liveCancel, _ := peerWork(t, live, "0001", time.Now())
	deadSale, _, deadCancel, _ := peerWork(t, dead, "0002", time.Now())
	if err := live.Instances().Heartbeat(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := dead.Instances().Heartbeat(ctx, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	own, _, ownCancel, _ := peerWork(t, s.store, "0003", time.Now())

	if err := s.AtStart(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		row  store.Txn
		want store.State
	}{
		{liveSale, store.Forwarded}, {liveCancel, store.Forwarded},
		{deadSale, store.TimedOut}, {deadCancel, store.Failed},
		{own, store.TimedOut}, {ownCancel, store.Failed},
	} {
		got, err := s.store.Lookup().Get(ctx, tt.row.ID)
		if err != nil || got.State != tt.want {
			t.Errorf("transaction %d of %q: %s %v, want %s", tt.row.ID, tt.row.Owner, got.State, err, tt.want)
		}
	}
}

// TestHeartbeatFailureClosesTheGate: a heartbeat the store refuses is a
// store failure: new sales are refused and /readyz reports it until a
// probe write succeeds.
func TestHeartbeatFailureClosesTheGate(t *testing.T) {
	s := sweepSwitch(t)
	var failing atomic.Bool
	s.useStore(store.WithFault(s.store, func(op string) error {
		if failing.Load() {
			return errors.New("database unreachable")
		}
		return nil
	}))
	ctx := context.Background()
	if err := s.heartbeat(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	if err := s.heartbeat(ctx, time.Now()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("heartbeat on an unreachable store: %v", err)
	}
	if ok, reason := s.guard.Status(); ok || s.guard.Admit() == nil {
		t.Fatalf("gate open after a failed heartbeat: %s", reason)
	}
	failing.Store(false)
	s.restoreJournal(ctx)
	if ok, reason := s.guard.Status(); !ok {
		t.Fatalf("gate still closed once the store takes writes: %s", reason)
	}
}

// TestHeldOutcomeOfATakenOverRowIsDropped: an outcome held during an
// outage longer than the lease is not journaled over the survivor's
// recovery of its row.
func TestHeldOutcomeOfATakenOverRowIsDropped(t *testing.T) {
	dir := t.TempDir()
	s := sweepSwitchIn(t, dir)
	ctx := context.Background()
	sale, _, _, _ := peerWork(t, s.store, "0001", time.Now())
	s.guard.Hold(&pipeline.Held{Row: sale, Update: store.Update{State: store.Approved, RC: "00"}}, errors.New("disk full"))
	// The survivor took this instance's work (its lease lapsed) and
	// reversed the sale.
	survivor := peerOf(t, dir, "survivor")
	if _, err := survivor.Instances().TakeOver(ctx, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := survivor.Sales().Set(ctx, sale.ID, store.Update{State: store.TimedOut, RC: "91"}, "recovered"); err != nil {
		t.Fatal(err)
	}
	s.restoreJournal(ctx)
	got, err := s.store.Lookup().Get(ctx, sale.ID)
	if err != nil || got.State != store.TimedOut || got.Owner != "survivor" {
		t.Fatalf("row after the outage: %s owner %q %v; want the survivor's timed out", got.State, got.Owner, err)
	}
	if held, _ := s.guard.Held(); len(held) != 0 {
		t.Fatalf("%d outcomes still held", len(held))
	}
	if ok, reason := s.guard.Status(); !ok {
		t.Fatalf("gate closed: %s", reason)
	}
}

// staleLapsed lists a peer as lapsed whatever its heartbeat says, as a
// listing read just before the peer heartbeated again.
type staleLapsed struct {
	store.Store
	peer string
}

func (s staleLapsed) Instances() store.Instances { return staleInstances{s.Store.Instances(), s.peer} }

type staleInstances struct {
	store.Instances
	peer string
}

func (s staleInstances) Lapsed(context.Context, time.Time) ([]store.Peer, error) {
	return []store.Peer{{Name: s.peer}}, nil
}

// TestPeerBackBeforeTakeOverIsLeftAlone: a peer listed as lapsed that
// heartbeats again before the take-over keeps its work, and the sweep is
// not a store failure (the gate stays open).
func TestPeerBackBeforeTakeOverIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	s := sweepSwitchIn(t, dir)
	ctx := context.Background()
	now := time.Now()
	peer := peerOf(t, dir, "peer")
	sale, _, _, _ := peerWork(t, peer, "0001", now)
	if err := peer.Instances().Heartbeat(ctx, now); err != nil {
		t.Fatal(err)
	}
	s.useStore(staleLapsed{s.store, "peer"})
	if err := s.Sweep(ctx, now.Add(time.Second)); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if ok, reason := s.guard.Status(); !ok {
		t.Fatalf("gate closed: %s", reason)
	}
	if got, _ := s.store.Lookup().Get(ctx, sale.ID); got.State != store.Forwarded || got.Owner != "peer" {
		t.Fatalf("a live peer's sale: %s owner %q", got.State, got.Owner)
	}
}

package payswitch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
)

// TestStoreUnreachableFailsReadiness: with no traffic at all, a store that
// stops taking writes is noticed by the heartbeat: /readyz fails (naming
// the instance), a new sale is refused 91 without reaching the issuer, and
// once the store is back the switch is ready and approves again.
func TestStoreUnreachableFailsReadiness(t *testing.T) {
	var down atomic.Bool
	fault := func(string) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}
	h := newHarnessWith(t, []payswitch.Option{payswitch.WithStoreFault(fault)}, "", func(c *config.Config) {
		c.InstanceName, c.Store.Lease = "sw-test", 3*time.Second // a heartbeat every second
	})
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	if r := h.readiness(t); !r.Ready || r.Instance != "sw-test" {
		t.Fatalf("readiness before the outage: %+v", r)
	}
	down.Store(true)
	waitFor(t, 10*time.Second, "/readyz failing while the store is unreachable", func() bool {
		r := h.readiness(t)
		return !r.Ready && strings.Contains(r.Journal, "connection refused")
	})
	iss := h.issuers["card-a"]
	sales := received(iss, specs.MTIFinancialRequest)
	term := h.terminal()
	ctx := context.Background()
	res, err := term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "91" {
		t.Fatalf("a sale while the store is unreachable: %+v %v; want 91", res, err)
	}
	if got := received(iss, specs.MTIFinancialRequest); got != sales {
		t.Fatalf("a sale reached the issuer while the store was unreachable")
	}
	down.Store(false)
	waitFor(t, 10*time.Second, "/readyz ready again", func() bool { return h.readiness(t).Ready })
	res, err = term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("a sale once the store is back: %+v %v", res, err)
	}
}

// TestRunningSwitchTakesOverALapsedPeer: a peer sharing the store left a
// sale in flight and a give-back queued, then stopped heartbeating. The
// running switch takes both over within a lease and a sweep: the sale is
// timed out with its reversal queued under this instance, and the peer's
// give-back becomes this instance's to send. A live peer's sale is not
// taken over (its owner stays).
//
// The live peer heartbeats before it has work in flight, as a switch
// does (an owner of in-flight work with no heartbeat at all is lapsed),
// with a lease far longer than the test, and its sale exists before the
// lapsed peer's work: the sweep that took that work over also saw the
// live peer's sale and left it alone.
func TestRunningSwitchTakesOverALapsedPeer(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) {
		c.InstanceName, c.Store.Lease = "survivor", 3*time.Second
	})
	ctx := context.Background()
	peerCfg := h.cfg
	peerCfg.InstanceName = "dead"
	dead, err := storage.Open(peerCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	peerCfg.InstanceName, peerCfg.Store.Lease = "alive", time.Minute
	alive, err := storage.Open(peerCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	sale := func(s store.Store, stan string) store.Txn {
		t.Helper()
		row, err := s.Sales().Begin(ctx, store.Txn{Key: store.Key{TerminalID: "PEER0001", STAN: stan, TxTime: "1201101500", MTI: "0200"},
			Listener: "terminal", ProcCode: "000000", Amount: 5000, Currency: "410", Route: "card-a", State: store.Forwarded,
			IssuerSTAN: "9" + stan[1:], IssuerTxTime: "1201101500"})
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	if err := alive.Instances().Heartbeat(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the live peer heartbeats like a switch
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			_ = alive.Instances().Heartbeat(ctx, time.Now())
		}
	}()
	living := sale(alive, "000003")

	lost := sale(dead, "000001")
	queuedFor := sale(dead, "000002")
	item, err := dead.Queue().Enqueue(ctx, store.SAFItem{TxnID: queuedFor.ID, Route: "card-a", Kind: store.KindReversal,
		Amount: 5000, NextAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Instances().Heartbeat(ctx, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 20*time.Second, "the lapsed peer's sale taken over and timed out", func() bool {
		row, err := dead.Lookup().Get(ctx, lost.ID)
		return err == nil && row.State == store.TimedOut && row.Owner == "survivor"
	})
	// The sweep may have taken the sale before the give-back was queued:
	// the give-back is then taken at a later sweep.
	testnet.EventuallyOK(t, 20*time.Second, "the lapsed peer's give-back and the sale's reversal queued under the survivor", func() error {
		items, err := dead.Queue().List(ctx, store.SAFPending)
		if err != nil {
			return err
		}
		owners := map[int64]string{}
		reversal := false
		for _, it := range items {
			owners[it.ID] = it.Owner
			reversal = reversal || (it.TxnID == lost.ID && it.Owner == "survivor")
		}
		if owners[item] != "survivor" || !reversal {
			return fmt.Errorf("SAF after the take-over: %+v", items)
		}
		return nil
	})
	if row, err := alive.Lookup().Get(ctx, living.ID); err != nil || row.State != store.Forwarded || row.Owner != "alive" {
		t.Fatalf("the live peer's sale: %+v %v", row, err)
	}
}

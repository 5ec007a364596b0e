package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded/embeddedtest"
	"github.com/kbpay/switch/switch/upstream"
)

var (
	errDiskFull = errors.New("no space left on device")
	errNoAnswer = fmt.Errorf("no answer: %w", upstream.ErrNoAnswer)
)

type fakeCipher struct{}

func (fakeCipher) EncryptPAN(_ context.Context, key hsm.KeyRef, _ string) (hsm.EncryptedPAN, error) {
	return hsm.EncryptedPAN{Key: key, Ciphertext: []byte("ct")}, nil
}

func (fakeCipher) DecryptPAN(context.Context, hsm.EncryptedPAN) (string, error) {
	return "9410000000000005", nil
}

// fakeGuard records what Record tells it.
type fakeGuard struct {
	mu      sync.Mutex
	closed  error
	held    []*Held
	failed  []error
	tracked map[int64]bool
}

func (g *fakeGuard) Admit() error { return g.closed }

func (g *fakeGuard) Track(id int64) func() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tracked[id] = true
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.tracked[id] = false
	}
}

func (g *fakeGuard) Failed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failed = append(g.failed, err)
}

func (g *fakeGuard) Hold(h *Held, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = append(g.held, h)
	g.failed = append(g.failed, err)
}

// guardedLedger is a Ledger on a journal whose writes of operation
// *failOp fail, with guard g.
func guardedLedger(t *testing.T, failOp *atomic.Value, g *fakeGuard) Ledger {
	t.Helper()
	failOp.Store("")
	j := store.WithFault(embeddedtest.Open(t), func(op string) error {
		if op == failOp.Load().(string) {
			return errDiskFull
		}
		return nil
	})
	l := LedgerOn(j)
	l.Cipher, l.DataKey = fakeCipher{}, "data"
	l.ReversalExpiry = time.Hour
	l.Guard = g
	return l
}

func recordChain(t *testing.T, l Ledger, up *fakeIssuer) Handler {
	return testLists(t, l, testRoutes{up: up})
}

// TestRecordWhenTheJournalFails: an outcome the journal refuses is never an
// approval (91, held for reversal); a decline passes through, held to be
// recorded; a request the journal cannot record, or any while the gate is
// closed, is answered 91 without reaching the issuer.
func TestRecordWhenTheJournalFails(t *testing.T) {
	good := purchase("9410000000000005", "000000015000")
	tests := []struct {
		name       string
		fields     map[int]string
		upErr      error
		failOp     string
		gateClosed bool
		wantCode   codes.Code
		wantSent   bool
		wantHeld   bool // an outcome held
		wantRevert bool // ... to be reversed
		wantFailed int  // failures reported to the guard
		wantState  store.State
	}{
		{name: "healthy", fields: good, wantCode: codes.Approved, wantSent: true, wantState: store.Approved},
		{name: "approval not journaled", fields: good, failOp: store.OpSet, wantCode: codes.IssuerUnavailable,
			wantSent: true, wantHeld: true, wantRevert: true, wantFailed: 1, wantState: store.Forwarded},
		{name: "no answer not journaled", fields: good, upErr: errNoAnswer, failOp: store.OpSet, wantCode: codes.IssuerUnavailable,
			wantSent: true, wantHeld: true, wantRevert: true, wantFailed: 1, wantState: store.Forwarded},
		// The reversal is queued before the row leaves "forwarded": when
		// queueing fails the row stays forwarded, so a crash leaves it to
		// recovery instead of a timed-out sale nobody reverses.
		{name: "no answer: reversal not queued", fields: good, upErr: errNoAnswer, failOp: store.OpEnqueue, wantCode: codes.IssuerUnavailable,
			wantSent: true, wantHeld: true, wantRevert: true, wantFailed: 1, wantState: store.Forwarded},
		{name: "decline not journaled", fields: with(good, specs.Amount, "000000005100"), failOp: store.OpSet, wantCode: "51",
			wantSent: true, wantHeld: true, wantFailed: 1, wantState: store.Forwarded},
		{name: "request not journaled", fields: good, failOp: store.OpBegin, wantCode: codes.IssuerUnavailable, wantFailed: 1},
		{name: "gate closed", fields: good, gateClosed: true, wantCode: codes.IssuerUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failOp atomic.Value
			g := &fakeGuard{tracked: map[int64]bool{}}
			if tt.gateClosed {
				g.closed = errors.New("journal not accepting writes")
			}
			l := guardedLedger(t, &failOp, g)
			failOp.Store(tt.failOp)
			up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect), err: tt.upErr}
			txn := &Txn{Request: request(t, "0200", tt.fields), MTI: "0200", Received: time.Now()}
			_ = Process(context.Background(), recordChain(t, l, up), txn)
			if txn.Code != tt.wantCode {
				t.Fatalf("code = %s (%s), want %s", txn.Code, txn.Reason, tt.wantCode)
			}
			if (up.got != nil) != tt.wantSent {
				t.Fatalf("sent to issuer = %v, want %v", up.got != nil, tt.wantSent)
			}
			resp, err := Respond(txn)
			if err != nil {
				t.Fatal(err)
			}
			if auth, _ := resp.GetString(specs.ApprovalCode); auth != "" && txn.Code != codes.Approved {
				t.Errorf("terminal got approval code %q with DE 39 %s", auth, txn.Code)
			}
			if (len(g.held) == 1) != tt.wantHeld || len(g.held) > 1 || len(g.failed) != tt.wantFailed {
				t.Fatalf("held %d, failures %v", len(g.held), g.failed)
			}
			if tt.wantHeld && g.held[0].Reverse != tt.wantRevert {
				t.Errorf("held outcome reverse = %v, want %v", g.held[0].Reverse, tt.wantRevert)
			}
			for id, working := range g.tracked {
				if working {
					t.Errorf("transaction %d still tracked as in flight after its answer", id)
				}
			}
			row, err := l.Sales.FindByKey(context.Background(), KeyOf(txn))
			if tt.wantState == "" {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("journal row %+v %v for a request never sent", row, err)
				}
				return
			}
			if err != nil || row.State != tt.wantState {
				t.Fatalf("journal row %s %v, want %s", row.State, err, tt.wantState)
			}
		})
	}
}

// TestSettleHeld: a held approval becomes timed out with exactly one
// reversal queued, also when the first settle fails half-way; a held
// decline is recorded as it was answered.
func TestSettleHeld(t *testing.T) {
	var failOp atomic.Value
	g := &fakeGuard{tracked: map[int64]bool{}}
	l := guardedLedger(t, &failOp, g)
	ctx := context.Background()
	failOp.Store(store.OpSet)
	for _, amount := range []string{"000000015000", "000000005100"} {
		txn := &Txn{Request: request(t, "0200", with(purchase("9410000000000005", amount), specs.STAN, amount[6:])), MTI: "0200"}
		_ = Process(ctx, recordChain(t, l, &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect)}), txn)
	}
	if len(g.held) != 2 || !g.held[0].Reverse || g.held[1].Reverse {
		t.Fatalf("held %+v", g.held)
	}
	approval, decline := g.held[0], g.held[1]
	if err := l.SettleHeld(ctx, approval); !errors.Is(err, errDiskFull) || !approval.ReversalQueued {
		t.Fatalf("settle while updates fail: %v (reversal queued %v)", err, approval.ReversalQueued)
	}
	failOp.Store("")
	for _, h := range []*Held{approval, decline} {
		if err := l.SettleHeld(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := l.Lookup.Get(ctx, approval.Row.ID)
	if got.State != store.TimedOut || got.RC != "91" {
		t.Errorf("held approval journaled as %s %s, want timed_out 91", got.State, got.RC)
	}
	items, _ := l.Queue.List(ctx, store.SAFPending)
	if len(items) != 1 || items[0].TxnID != approval.Row.ID || items[0].Amount != 15000 {
		t.Errorf("SAF queue %+v, want one reversal of 15000", items)
	}
	got, _ = l.Lookup.Get(ctx, decline.Row.ID)
	if got.State != store.Declined || got.RC != "51" {
		t.Errorf("held decline journaled as %s %s, want declined 51", got.State, got.RC)
	}
}

package saf

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/switch/store"
)

// TestSAFAttemptCutShortByShutdownIsNoWarning: an attempt the switch's
// own shutdown cuts short is not an issuer that failed to acknowledge: it
// logs no warning, and the attempt is still recorded (the item stays
// pending, the next attempt is a repeat).
func TestSAFAttemptCutShortByShutdownIsNoWarning(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	s, st := testInstance(t, t.TempDir(), "test", testRoutes{}, zap.New(core))
	ctx := context.Background()
	row, err := st.Sales().Begin(ctx, store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: "000001", TxTime: "1125101500", MTI: "0200"},
		ProcCode: "000000", Amount: 10000, Currency: "410", Route: "fast", State: store.TimedOut})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.Queue().Enqueue(ctx, store.SAFItem{TxnID: row.ID, Route: "fast", Kind: store.KindReversal, Amount: 10000,
		NextAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	items, err := st.Queue().Claim(ctx, "fast", now.Add(time.Second), time.Minute, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %+v %v", items, err)
	}
	stopping, stop := context.WithCancel(ctx)
	stop()
	s.attempt(stopping, items[0])
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel {
			t.Errorf("an attempt cut short by shutdown logged %s %q %v", e.Level, e.Message, e.ContextMap())
		}
	}
	got, err := st.SAFDesk().Get(ctx, items[0].ID)
	if err != nil || got.State != store.SAFPending || got.Attempts != 1 {
		t.Fatalf("after the cut-short attempt: %+v %v, want pending with 1 attempt recorded", got, err)
	}
}

package pipeline

import (
	"context"
	"testing"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// TestRateLimitStage: a listener that limits in the pipeline answers 91
// past a terminal's burst and counts the refusal; other terminals and
// listeners without limits here go on to the next stage.
func TestRateLimitStage(t *testing.T) {
	keyed := NewTerminalLimits(1) // bursts of 2
	var refused []string
	passed := 0
	h := Chain([]Stage{RateLimit(
		func(listener string) { refused = append(refused, listener) },
	)}, HandlerFunc(func(_ context.Context, t *Txn) error {
		passed++
		t.Code = codes.Approved
		return nil
	}))
	tests := []struct {
		listener, terminal string
		want               codes.Code
	}{
		{"keyed", "TERM0001", codes.Approved},
		{"keyed", "TERM0001", codes.Approved},
		{"keyed", "TERM0001", codes.IssuerUnavailable},
		{"keyed", "TERM0002", codes.Approved},
		{"plain", "TERM0001", codes.Approved},
		{"plain", "TERM0001", codes.Approved},
		{"plain", "TERM0001", codes.Approved},
	}
	for i, tt := range tests {
		txn := &Txn{Listener: tt.listener, MTI: "0200", Request: request(t, "0200", map[int]string{specs.TerminalID: tt.terminal})}
		if tt.listener == "keyed" {
			txn.Policy.Limits = keyed // the keyed listener limits here
		}
		if err := Process(context.Background(), h, txn); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if txn.Code != tt.want {
			t.Fatalf("request %d (%s %s): DE 39 %s, want %s", i, tt.listener, tt.terminal, txn.Code, tt.want)
		}
	}
	if passed != len(tests)-1 || len(refused) != 1 || refused[0] != "keyed" {
		t.Fatalf("passed %d, refused %v: want %d passed, one refusal on keyed", passed, refused, len(tests)-1)
	}
}

func TestTerminalLimitsDisabled(t *testing.T) {
	off := NewTerminalLimits(-1)
	for i := 0; i < 1000; i++ {
		if !off.Allow("TERM0001") {
			t.Fatalf("request %d refused with the limit off", i)
		}
	}
}

package payswitch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
)

// TestOneInfoLinePerTransaction: an approval and a switch decline each get
// one info line with the listener, MTI, processing code, masked card,
// terminal, merchant, amount, currency, route, DE 39, RRN, approval code and
// the switch's and issuer's time; never the full card number.
func TestOneInfoLinePerTransaction(t *testing.T) {
	h := newHarness(t, "")
	term := h.linkedTerminal("card-a")
	ctx := context.Background()
	res, err := term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1500})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("%+v %v", res, err)
	}
	if res, err := term.Purchase(ctx, terminal.Purchase{PAN: foreign, Amount: 700}); err != nil || res.ResponseCode != "92" {
		t.Fatalf("%+v %v", res, err)
	}
	var lines []map[string]any
	waitFor(t, 5*time.Second, "two transaction lines", func() bool {
		lines = nil
		for _, e := range h.logs.FilterMessage("transaction").All() {
			if e.Level.String() == "info" {
				lines = append(lines, e.ContextMap())
			}
		}
		return len(lines) == 2
	})
	approved, declined := lines[0], lines[1]
	want := map[string]string{"listener": "terminal", "mti": "0200", "processing_code": "000000", "card": "941000******0005",
		"terminal": terminal.DefaultTerminalID, "merchant": terminal.DefaultMerchantID, "amount": "000000001500",
		"route": "card-a", "rc": "00", "approval_code": res.ApprovalCode}
	for k, v := range want {
		if got := fmtAny(approved[k]); got != v {
			t.Errorf("approval line %s = %q, want %q (line %v)", k, got, v, approved)
		}
	}
	for _, k := range []string{"currency", "rrn", "stan", "switch_ms", "issuer_ms"} {
		if v, ok := approved[k]; !ok || fmtAny(v) == "" {
			t.Errorf("approval line lacks %s: %v", k, approved)
		}
	}
	if approved["issuer_ms"].(float64) <= 0 {
		t.Errorf("issuer_ms %v", approved["issuer_ms"])
	}
	if declined["rc"] != "92" || declined["reason"] == nil || declined["issuer_ms"].(float64) != 0 {
		t.Errorf("decline line %v", declined)
	}
	for _, e := range h.logs.All() {
		for _, v := range e.ContextMap() {
			if strings.Contains(fmtAny(v), cardA) || strings.Contains(fmtAny(v), foreign) {
				t.Errorf("full card number in log line %q: %v", e.Message, e.ContextMap())
			}
		}
	}
}

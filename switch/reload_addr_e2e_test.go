package payswitch_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
)

// TestReloadAppliesAChangedIssuerAddress: the report that a
// reload (SIGHUP) silently ignored a route's new address. After the
// reload, card-a's sales go to the new host only.
func TestReloadAppliesAChangedIssuerAddress(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") })
	moved := startIssuer(t, "card-a", "127.0.0.1:0", "9410")
	cfg := h.cfg
	cfg.Routes = slices.Clone(h.cfg.Routes)
	cfg.Routes[0].Addrs = []string{moved.Addr()}
	if err := h.sw.ReloadRoutes(cfg); err != nil {
		t.Fatal(err)
	}
	term := h.terminal()
	old := len(h.issuers["card-a"].Approvals())
	for range 5 {
		if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: "9410000000000005", Amount: 100}); err != nil || res.ResponseCode != "00" {
			t.Fatalf("purchase: %v %s", err, res.ResponseCode)
		}
	}
	if n := len(moved.Approvals()); n != 5 {
		t.Fatalf("the new address approved %d of 5 sales (the old one %d)", n, len(h.issuers["card-a"].Approvals())-old)
	}
}

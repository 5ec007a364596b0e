package payswitch_test

import (
	"context"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
)

// TestRouteOverTwoEndpointsOfOneIssuer: a route whose two endpoints are
// two addresses of ONE issuer emulator keeps approving when the emulator
// takes one endpoint down, and the one ledger reconciles with the
// approvals the terminal got.
func TestRouteOverTwoEndpointsOfOneIssuer(t *testing.T) {
	is := issuertest.Start(t, issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", Addrs: []string{"127.0.0.1:0"}, BINs: []string{"9410"}})
	addrs := is.Addrs()
	h := newHarness(t, addrs[0], func(c *config.Config) {
		c.Routes[0].Addrs = addrs
		c.Routes[0].Policy = "round_robin"
	})
	waitFor(t, 10*time.Second, "both endpoints connected", func() bool { return is.SignOns() >= 2 && is.Connections() == 2 })
	opening := is.Balance(cardA)
	term := h.terminal()
	var spent int64
	buy := func(phase string, n int) {
		t.Helper()
		for range n {
			res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100})
			if err != nil {
				t.Fatalf("%s: %v", phase, err)
			}
			if res.ResponseCode != "00" {
				t.Fatalf("%s: purchase answered %s, want 00", phase, res.ResponseCode)
			}
			spent += 100
		}
	}
	buy("both endpoints up", 10)
	if err := is.TakeDown("1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "endpoint 1's connection closed", func() bool { return is.Connections() == 1 })
	// links_up counts the route's links up: 1 once the switch saw the close.
	waitFor(t, 10*time.Second, "the switch sees endpoint 1 down", func() bool { return h.linksUp("card-a") })
	buy("endpoint 1 down", 10)
	if got := is.Balance(cardA); got != opening-spent {
		t.Fatalf("ledger balance %d, want %d (opening %d less %d approved)", got, opening-spent, opening, spent)
	}
	if got := len(is.Approvals()); got != 20 {
		t.Fatalf("issuer holds %d approvals, want 20", got)
	}
	if eps := is.Endpoints(); !eps[1].Down || eps[0].Down {
		t.Fatalf("endpoints after taking 1 down: %+v", eps)
	}
}

package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
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

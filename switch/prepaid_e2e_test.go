package payswitch_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

const (
	gift    = "9430000000000001"
	giftLow = "9430000000000019" // opening balance below the test sale
)

// prepaidHarness starts a refund-only prepaid host (no reversals) next to
// the card issuers, routed with give_back: refund.
func prepaidHarness(t *testing.T) (*harness, *issuer.Issuer) {
	t.Helper()
	pre := issuertest.Start(t, issuer.Config{Name: "prepaid", Addr: "127.0.0.1:0", BINs: []string{"9430"},
		Reversals: issuer.Bool(false), Balances: map[string]int64{giftLow: 1000}})
	h := newHarness(t, "", func(c *config.Config) {
		c.Journal.SAFInterval = 50 * time.Millisecond
		c.Journal.RetryMax = 200 * time.Millisecond
		c.Routes = append(c.Routes, config.IssuerRoute{Name: "prepaid", BINs: []string{"9430"}, Addrs: []string{pre.Addr()},
			Timeout: routeTime, GiveBack: "refund", PIN: &config.PINKey{Key: "zpk-demo"}})
	})
	waitFor(t, 5*time.Second, "prepaid link", func() bool { return h.linksUp("prepaid") })
	return h, pre
}

// TestRefundOnlyHostUnknownOutcomes: a sale on a refund-only host whose
// answer never came is given back by a refund that names it; the host
// applies it at most once and only when the sale took effect. Whatever
// the fault, the card ends where the terminals' answers say (all 91 here:
// the opening balance), never above it.
func TestRefundOnlyHostUnknownOutcomes(t *testing.T) {
	cases := []struct {
		name   string
		card   string
		amount int64
		fault  issuer.Fault
		mode   issuer.Mode
	}{
		// The sale is lost on the way in: nothing to give back.
		{"silent, not charging", gift, 5000, issuer.Fault{}, issuer.Silent},
		// The sale is applied, its answer lost: given back exactly once.
		{"silent, charging", gift, 6000, issuer.Fault{ChargeWhenSilent: true}, issuer.Silent},
		// Declined (51), the decline arrives after the timeout: nothing
		// to give back.
		{"late decline", giftLow, 7000, issuer.Fault{LateBy: 3 * routeTime}, issuer.Normal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, pre := prepaidHarness(t)
			term := h.terminal()
			opening := pre.Balance(tc.card)
			pre.SetFault(tc.fault)
			pre.SetMode(tc.mode)
			if _, resp := sale(t, term, tc.card, tc.amount); resp != nil {
				if rc, _ := resp.GetString(specs.ResponseCode); rc != "91" {
					t.Fatalf("sale without an answer in time: %s, want 91", rc)
				}
			}
			pre.SetMode(issuer.Normal)
			pre.SetFault(issuer.Fault{})
			h.waitSAFSettled(t)
			if b := pre.Balance(tc.card); b != opening {
				t.Fatalf("balance %d after the give-back settled, want the opening %d (terminal was told 91)", b, opening)
			}
			if pre.Stats().Reversals != 0 {
				t.Fatal("the switch sent reversals to a host that takes none")
			}
		})
	}
}

// TestRefundRepeatsAreAppliedOnce: the first give-back refund is applied
// but its answer is lost; the repeats carry the same DE 11, DE 7 and
// DE 37 and the host applies none of them again.
func TestRefundRepeatsAreAppliedOnce(t *testing.T) {
	h, pre := prepaidHarness(t)
	term := h.terminal()
	opening := pre.Balance(gift)
	pre.SetFault(issuer.Fault{ChargeWhenSilent: true})
	pre.SetMode(issuer.Silent)
	sale(t, term, gift, 4000)
	// Every give-back attempt is applied, none answered, for a while.
	waitFor(t, 20*time.Second, "three refund attempts", func() bool { return len(refundsTo(pre)) >= 3 })
	pre.SetMode(issuer.Normal)
	pre.SetFault(issuer.Fault{})
	h.waitSAFSettled(t)
	if b := pre.Balance(gift); b != opening {
		t.Fatalf("balance %d after repeated refunds, want the opening %d", b, opening)
	}
	first := refundsTo(pre)[0]
	for _, r := range refundsTo(pre) {
		for _, id := range []int{specs.STAN, specs.TransmissionDateTime, specs.RRN, specs.OriginalData} {
			if r.Fields[id] != first.Fields[id] {
				t.Fatalf("a repeat changed DE %d: %q, first attempt %q", id, r.Fields[id], first.Fields[id])
			}
		}
	}
	if first.Fields[specs.OriginalData] == "" {
		t.Fatal("the give-back refund does not name its original (DE 90)")
	}
}

// refundsTo lists the 0200 refunds (DE 3 20xxxx) the host received.
func refundsTo(is *issuer.Issuer) []issuer.Received {
	var out []issuer.Received
	for _, r := range is.Received() {
		if r.MTI == specs.MTIFinancialRequest && len(r.Fields[specs.ProcessingCode]) == 6 && r.Fields[specs.ProcessingCode][:2] == "20" {
			out = append(out, r)
		}
	}
	return out
}

// waitSAFSettled waits until no give-back is pending.
func (h *harness) waitSAFSettled(t *testing.T) {
	t.Helper()
	testnet.EventuallyOK(t, 20*time.Second, "no give-back pending", func() error {
		if last := h.adminGet(t, "/v1/saf"); strings.TrimSpace(last) != "[]" {
			return fmt.Errorf("SAF %s", last)
		}
		return nil
	})
}

package payswitch_test

import (
	"context"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// lastReceived is the issuer's latest request with mti.
func lastReceived(iss *issuer.Issuer, mti string) (issuer.Received, bool) {
	var got issuer.Received
	found := false
	for _, r := range iss.Received() {
		if r.MTI == mti {
			got, found = r, true
		}
	}
	return got, found
}

// TestRouteMappingEndToEnd: card-a's mapping drops DE 42, sets DE 32 on
// sales and on the reversal of a cancel, and answers the issuer's 51 as
// 05; a reload changes the mapping for the next request.
func TestRouteMappingEndToEnd(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) {
		c.Routes[0].Mapping = config.Mapping{Drop: []int{specs.MerchantID}, Constants: map[int]string{32: "123456"},
			ResponseCodes: map[string]string{"51": "05"}}
	})
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	iss := h.issuers["card-a"]

	req, resp := sale(t, term, cardA, 10000)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("sale %s", rc)
	}
	got, _ := lastReceived(iss, "0200")
	if _, sent := got.Fields[specs.MerchantID]; sent {
		t.Errorf("the issuer got the dropped DE 42: %q", got.Fields[specs.MerchantID])
	}
	if got.Fields[32] != "123456" {
		t.Errorf("sale DE 32 = %q, want the route's constant", got.Fields[32])
	}
	if rc := send(t, term, cancelOf(t, term, req, -1)); rc != "00" {
		t.Fatalf("cancel %s", rc)
	}
	rev, ok := lastReceived(iss, "0400")
	if !ok || rev.Fields[32] != "123456" {
		t.Errorf("reversal (sent %v) DE 32 = %q, want the route's constant", ok, rev.Fields[32])
	}
	_, declined := sale(t, term, cardA2, 2_000_000)
	if rc, _ := declined.GetString(specs.ResponseCode); rc != "05" {
		t.Fatalf("issuer's 51 reached the terminal as %s, want 05", rc)
	}
	rrn, _ := declined.GetString(specs.RRN)
	var journaled []txnJSON
	if code := h.adminCall("GET", "/v1/transactions?rrn="+rrn, nil, &journaled); code != 200 || len(journaled) != 1 || journaled[0].RC != "05" {
		t.Errorf("journal of the decline (RRN %s): %d %+v, want RC 05", rrn, code, journaled)
	}

	// Reload: DE 42 travels again, 51 now maps to 61, no constant.
	cfg := h.cfg
	cfg.Routes = append([]config.IssuerRoute(nil), h.cfg.Routes...)
	cfg.Routes[0].Mapping = config.Mapping{ResponseCodes: map[string]string{"51": "61"}}
	if _, err := h.sw.Reload(context.Background(), reparse(t, cfg)); err != nil {
		t.Fatal(err)
	}
	if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA2, Amount: 2_000_000}); err != nil || res.ResponseCode != "61" {
		t.Fatalf("after reload the issuer's 51 reached the terminal as %s (%v), want 61", res.ResponseCode, err)
	}
	got, _ = lastReceived(iss, "0200")
	if got.Fields[specs.MerchantID] == "" || got.Fields[32] != "" {
		t.Errorf("after reload DE 42 = %q, DE 32 = %q: want the terminal's and none", got.Fields[specs.MerchantID], got.Fields[32])
	}

	// A mapping that would turn a decline into an approval is refused.
	cfg.Routes[0].Mapping = config.Mapping{ResponseCodes: map[string]string{"51": "00"}}
	if _, err := h.sw.Reload(context.Background(), cfg); err == nil {
		t.Fatal("a reload mapping 51 to 00 was applied")
	}
}

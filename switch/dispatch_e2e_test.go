package payswitch_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// stageCount is how many times stage ran, from /metrics.
func (h *harness) stageCount(t *testing.T, stage string) int {
	t.Helper()
	v := metricLine(h.adminGet(t, "/metrics"), `payswitch_stage_duration_seconds_count{stage="`+stage+`"}`)
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("payswitch_stage_duration_seconds_count{stage=%q} = %q", stage, v)
	}
	return n
}

// TestEveryIssuerRequestTakesTheIssuerLeg: a sale, a merchant cancel and
// the SAF worker's reversal of a timed-out sale all reach the issuer by
// the one issuer leg: every request the issuer receives was journaled by
// its list's record stage and sent by the forward stage.
func TestEveryIssuerRequestTakesTheIssuerLeg(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	iss := h.issuers["card-a"]
	for _, stage := range []string{"mac", "validate", "journal", "route", "record", "record-giveback", "record-queued", "forward", "settles"} {
		if n := h.stageCount(t, stage); n != 0 {
			t.Fatalf("stage %s ran %d times before any request", stage, n)
		}
	}
	req, resp := sale(t, term, cardA, 10000)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("sale %s", rc)
	}
	if rc := send(t, term, cancelOf(t, term, req, -1)); rc != "00" {
		t.Fatalf("cancel: %s", rc)
	}
	iss.SetMode(issuer.Silent)
	res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 15000})
	if err != nil || res.ResponseCode != "91" {
		t.Fatalf("sale to a silent issuer: %+v %v", res, err)
	}
	iss.SetMode(issuer.Normal)
	waitFor(t, 20*time.Second, "the reversal of 15000 acknowledged in the SAF queue", func() bool {
		return strings.Contains(h.adminGet(t, "/v1/saf?state=done"), `"amount":15000`)
	})
	sent := received(iss, specs.MTIAuthRequest, specs.MTIFinancialRequest, specs.MTIReversal,
		specs.MTIReversalAdvice, specs.MTIReversalRepeat)
	forward := h.stageCount(t, "forward")
	records := map[string]int{}
	for _, stage := range []string{"record", "record-giveback", "record-queued"} {
		records[stage] = h.stageCount(t, stage)
	}
	if forward != sent {
		t.Errorf("the issuer received %d requests, the forward stage sent %d", sent, forward)
	}
	if records["record"] != 2 || records["record-giveback"] != 1 || records["record-queued"] < 1 {
		t.Errorf("record stages ran %v: want the 2 sales, the cancel and at least one SAF attempt", records)
	}
	if sum := records["record"] + records["record-giveback"] + records["record-queued"]; sum != forward {
		t.Errorf("%d requests journaled before they left, %d sent", sum, forward)
	}
}

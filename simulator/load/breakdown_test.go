package load

import (
	"strings"
	"testing"
	"time"
)

// TestDefaultCardsDoNotRunDry: a long run at a high rate gets enough demo
// cards that the demo accounts (1,000,000 each) cover its purchases.
func TestDefaultCardsDoNotRunDry(t *testing.T) {
	c := Config{Rate: 1000, Duration: time.Minute}.withDefaults()
	need := int(1000 * 60 * DefaultAmountMax / demoOpenToBuy)
	if len(c.Cards) < need {
		t.Fatalf("%d cards for 60,000 purchases of up to %d: the accounts run dry (need at least %d)", len(c.Cards), DefaultAmountMax, need)
	}
	if c.Cards[0] != DemoCards[0] {
		t.Errorf("the demo cards no longer come first: %s", maskCard(c.Cards[0]))
	}
	seen := map[string]bool{}
	for _, card := range c.Cards {
		if seen[card] {
			t.Fatalf("card %s twice", maskCard(card))
		}
		seen[card] = true
	}
	if short := (Config{Rate: 10, Duration: time.Second}).withDefaults(); len(short.Cards) != len(DemoCards) {
		t.Errorf("a short run got %d cards, want the %d demo cards", len(short.Cards), len(DemoCards))
	}
}

func TestDeclinesDominateWarning(t *testing.T) {
	rep := &Report{ByType: map[string]TypeCounts{kindPurchase.String(): {Sent: 100, Answered: 100, Approved: 10}},
		ResponseCodes: []CodeCount{{Code: "51", Meaning: "Not sufficient funds", Count: 90}, {Code: "00", Count: 10}}}
	w := declinesDominate(rep)
	if !strings.Contains(w, "declines dominate: 10% of the answered purchases were approved (mostly 51 Not sufficient funds)") ||
		!strings.Contains(w, "/reset") {
		t.Errorf("%q", w)
	}
	rep.ByType[kindPurchase.String()] = TypeCounts{Answered: 100, Approved: 80}
	if w := declinesDominate(rep); w != "" {
		t.Errorf("warned at 80%% approvals: %q", w)
	}
}

func TestSwitchTimeFromMetrics(t *testing.T) {
	before, err := parseSums(strings.NewReader(`# HELP x
payswitch_request_duration_seconds_sum{listener="terminal",mti="0200"} 1
payswitch_request_duration_seconds_count{listener="terminal",mti="0200"} 100
payswitch_issuer_duration_seconds_sum{outcome="answered",route="card-a"} 0.5
payswitch_issuer_duration_seconds_count{outcome="answered",route="card-a"} 100
`))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseSums(strings.NewReader(`payswitch_request_duration_seconds_sum{listener="terminal",mti="0200"} 3
payswitch_request_duration_seconds_sum{listener="van",mti="0200"} 1
payswitch_request_duration_seconds_count{listener="terminal",mti="0200"} 1100
payswitch_request_duration_seconds_count{listener="van",mti="0200"} 1000
payswitch_issuer_duration_seconds_sum{outcome="answered",route="card-a"} 2.5
payswitch_issuer_duration_seconds_sum{outcome="timed_out",route="card-a"} 0
payswitch_issuer_duration_seconds_count{outcome="answered",route="card-a"} 2100
`))
	if err != nil {
		t.Fatal(err)
	}
	st := switchTime("http://x/metrics", before, after)
	// 2000 answers took 3 s, 2000 issuer calls 2 s: 1.5 ms each, 1 ms at the issuer.
	if st == nil || st.Requests != 2000 || st.MeanTotalMS != 1.5 || st.MeanIssuerMS != 1 || st.MeanSwitchMS != 0.5 || int(st.SwitchPercent) != 33 {
		t.Fatalf("%+v", st)
	}
}

func TestTextSummaryBreakdowns(t *testing.T) {
	rep := &Report{
		ByType:       map[string]TypeCounts{kindPurchase.String(): {Sent: 4, Answered: 4, Approved: 3}},
		ApprovalRate: 0.75,
		Percentiles:  []PercentilePoint{{50, 1}, {75, 2}, {90, 3}, {95, 4}, {99, 5}, {99.9, 6}, {99.99, 7}, {100, 8}},
		ByRoute:      []RouteStats{{BIN: "9410", Sent: 4, Answered: 4, Approved: 3, ApprovalRate: 0.75, P50: 1, P99: 5}},
		SwitchTime:   &SwitchTime{Source: "http://x/metrics", MeanTotalMS: 1.5, MeanSwitchMS: 0.5, SwitchPercent: 33, MeanIssuerMS: 1, IssuerCalls: 4},
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"approval rate  75.0% of 4 answered purchases", "p99.99", "8.000", "9410", "0.500 ms in the switch (33%)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

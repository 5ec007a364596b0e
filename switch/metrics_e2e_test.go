package payswitch_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
)

// metricLine finds the sample line of a series (name and labels as they
// appear in the exposition) and returns its value, "" when absent.
func metricLine(exposition, series string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestOperatorMetrics: labelled series exist at zero before any traffic;
// build info; issuer latency split by outcome; journal commit latency; the
// SAF backlog by state, right after a restart.
func TestOperatorMetrics(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) {
		c.Journal.SAFInterval = 20 * time.Millisecond
		c.Journal.ReversalExpiry = 200 * time.Millisecond
	})
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	m := h.adminGet(t, "/metrics")
	for _, series := range []string{
		`payswitch_requests_total{listener="terminal",mti="0200",rc="91",route="card-a"}`,
		`payswitch_refused_total{listener="van",reason="rate_limit"}`,
		`payswitch_input_errors_total{listener="terminal",reason="undecodable"}`,
		`payswitch_issuer_duration_seconds_count{outcome="timed_out",route="card-b"}`,
		`payswitch_issuer_late_responses_total{route="card-a"}`,
		`payswitch_saf_attempts_total{result="review",route="card-a"}`,
		`payswitch_config_reloads_total{result="refused"}`,
		`payswitch_saf_items{state="review"}`,
	} {
		if v := metricLine(m, series); v != "0" {
			t.Errorf("%s = %q before any traffic, want 0", series, v)
		}
	}
	if !regexp.MustCompile(`payswitch_build_info\{commit="[^"]+",go_version="go[^"]+",version="[^"]+"\} 1`).MatchString(m) {
		t.Errorf("no build info:\n%s", grepLines(m, "build_info"))
	}

	h.issuers["card-a"].SetMode(issuer.Silent)
	if res, err := h.terminal().Purchase(t.Context(), terminal.Purchase{PAN: cardA, Amount: 500}); err != nil || res.ResponseCode != "91" {
		t.Fatalf("%+v %v", res, err)
	}
	waitFor(t, 10*time.Second, "the reversal in manual review", func() bool {
		return metricLine(h.adminGet(t, "/metrics"), `payswitch_saf_items{state="review"}`) == "1"
	})
	m = h.adminGet(t, "/metrics")
	if v := metricLine(m, `payswitch_issuer_duration_seconds_count{outcome="timed_out",route="card-a"}`); v == "0" || v == "" {
		t.Errorf("timed-out exchange not counted: %s", grepLines(m, "issuer_duration_seconds_count"))
	}
	if v := metricLine(m, `payswitch_journal_commit_duration_seconds_count{result="ok"}`); v == "0" || v == "" {
		t.Errorf("journal commits not measured: %s", grepLines(m, "journal_commit"))
	}

	h.stopSwitch(h.sw)
	h.startSwitch()
	if v := metricLine(h.adminGet(t, "/metrics"), `payswitch_saf_items{state="review"}`); v != "1" {
		t.Errorf("after a restart the manual-review backlog is %q, want 1", v)
	}
}

// TestMetricsDocumented: every metric the switch exports is in
// docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "")
	// One sale, so that the series created on first use (the HSM's) exist.
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	if res, err := h.terminal().Purchase(t.Context(), terminal.Purchase{PAN: cardA, Amount: 1200}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("sale: %+v %v", res, err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE ((?:payswitch|hsm)_\w+) `).FindAllStringSubmatch(h.adminGet(t, "/metrics"), -1) {
		names[m[1]] = true
	}
	if len(names) < 20 {
		t.Fatalf("only %d metrics found", len(names))
	}
	for n := range names {
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("%s is not documented in docs/metrics.md", n)
		}
	}
}

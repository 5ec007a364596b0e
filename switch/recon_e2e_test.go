package payswitch_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

func batchTotals(t *testing.T, term *terminal.Client, sales, salesAmt, cancels, cancelsAmt, refunds, refundsAmt int64) *iso8583.Message {
	m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	m.MTI("0500")
	for id, v := range map[int]string{
		specs.STAN: term.NextSTAN(), specs.TransmissionDateTime: time.Now().UTC().Format("0102150405"),
		specs.TerminalID: terminal.DefaultOptions().TerminalID,
		76:               fmt.Sprintf("%010d", sales), 88: fmt.Sprintf("%016d", salesAmt),
		77: fmt.Sprintf("%010d", cancels), 89: fmt.Sprintf("%016d", cancelsAmt),
		74: fmt.Sprintf("%010d", refunds), 86: fmt.Sprintf("%016d", refundsAmt),
	} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (h *harness) adminGet(t *testing.T, path string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.sw.AdminAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+config.DemoAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestReconciliationAndSettlement(t *testing.T) {
	h := newHarness(t, "")
	term := h.linkedTerminal("card-a")
	r1, _ := sale(t, term, cardA, 1000)
	sale(t, term, cardA, 2000)
	sale(t, term, cardB, 3000)
	sale(t, term, cardA2, 2_000_000) // declined 51: not in the totals
	if rc := send(t, term, cancelOf(t, term, r1, 400)); rc != "00" {
		t.Fatalf("partial cancel %s", rc)
	}
	// Wrong totals: 95, and the difference is listed by the admin API.
	if rc := send(t, term, batchTotals(t, term, 3, 6000, 0, 0, 0, 0)); rc != "95" {
		t.Fatalf("wrong totals answered %s", rc)
	}
	if body := h.adminGet(t, "/v1/reconciliations"); !strings.Contains(body, "reconcile_mismatch") {
		t.Fatalf("admin API does not list the mismatch: %s", body)
	}
	// Right totals: 00; the next batch starts empty.
	if rc := send(t, term, batchTotals(t, term, 3, 6000, 1, 600, 0, 0)); rc != "00" {
		t.Fatalf("matching totals answered %s", rc)
	}
	if rc := send(t, term, batchTotals(t, term, 0, 0, 0, 0, 0, 0)); rc != "00" {
		t.Fatalf("empty next batch answered %s", rc)
	}

	lines, paths := settlement(t, h)
	net := map[string]int64{}
	for route, ls := range lines {
		for _, l := range ls {
			net[route] += l.Amount
		}
	}
	if net["card-a"] != 1000+2000-600 || net["card-b"] != 3000 {
		t.Fatalf("settlement nets %v", net)
	}
	if len(paths) != 2 {
		t.Fatalf("settlement files %v", paths)
	}
	b, _ := os.ReadFile(paths[0])
	if strings.Contains(string(b), cardA) || !strings.Contains(string(b), "941000******0005") {
		t.Fatalf("settlement file must carry masked PANs only:\n%s", b)
	}
}

// TestSAFSurvivesRestart: a sale whose answer was lost is reversed by the
// next switch process on the same data, after the first one stopped (the
// first process's SAF worker is made too slow to act, so only the restart
// can do it).
func TestSAFSurvivesRestart(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) { c.Journal.SAFInterval = time.Hour })
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	iss := h.issuers["card-a"]
	iss.SetFault(issuer.Fault{ChargeWhenSilent: true})
	iss.SetMode(issuer.Silent)
	term := h.terminal()
	if _, resp := sale(t, term, cardA, 5000); resp != nil {
		if rc, _ := resp.GetString(specs.ResponseCode); rc != "91" {
			t.Fatalf("sale: %s", rc)
		}
	}
	waitFor(t, 5*time.Second, "the issuer to charge the sale whose answer it withholds", func() bool {
		return iss.Balance(cardA) == openToBuy-5000
	})
	h.stopSwitch(h.sw)
	iss.SetMode(issuer.Normal)
	iss.SetFault(issuer.Fault{})
	h.cfg.Journal.SAFInterval = 50 * time.Millisecond
	h.startSwitch()
	waitFor(t, 15*time.Second, "the restarted switch to reverse the lost sale", func() bool { return iss.Balance(cardA) == openToBuy })
}

// TestSAFManualReview: a reversal the issuer never acknowledges is flagged
// for manual review once it expires, and listed by the admin API.
func TestSAFManualReview(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) {
		c.Journal.SAFInterval = 50 * time.Millisecond
		c.Journal.ReversalExpiry = 700 * time.Millisecond
		c.Routes[0].STANQuarantine = c.Routes[0].Timeout // the unanswered attempts' STANs are let go soon
	})
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	h.issuers["card-a"].SetMode(issuer.Silent)
	term := h.terminal()
	sale(t, term, cardA, 100)
	waitFor(t, 10*time.Second, "the reversal to reach manual review", func() bool {
		var items []map[string]any
		_ = json.Unmarshal([]byte(h.adminGet(t, "/v1/saf?state=review")), &items)
		return len(items) == 1
	})
	resp, err := http.Get("http://" + h.sw.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "payswitch_saf_manual_review_total 1") {
		t.Fatal("manual review not counted in /metrics")
	}
	// The item keeps its STAN through review (an operator may send it
	// again with the same DE 11) and lets it go when resolved.
	waitFor(t, 10*time.Second, "the quarantine of the unanswered sale and attempts", func() bool { return h.stansInUse(t, "card-a") <= 1 })
	inReview := h.stansInUse(t, "card-a")
	var items []struct{ ID int64 }
	_ = json.Unmarshal([]byte(h.adminGet(t, "/v1/saf?state=review")), &items)
	if code := h.adminCall("POST", fmt.Sprintf("/v1/saf/%d/resolve", items[0].ID),
		map[string]string{"operator": "test", "reason": "settled with the issuer by phone"}, nil); code != http.StatusOK {
		t.Fatalf("resolve: HTTP %d", code)
	}
	if after := h.stansInUse(t, "card-a"); inReview < 1 || after != inReview-1 {
		t.Fatalf("card-a STANs in use: %d in review, %d after resolve; want the item's STAN held until resolved", inReview, after)
	}
}

// stansInUse reads payswitch_issuer_stans_in_use for route.
func (h *harness) stansInUse(t *testing.T, route string) int {
	t.Helper()
	resp, err := http.Get("http://" + h.sw.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	prefix := `payswitch_issuer_stans_in_use{route="` + route + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			n, _ := strconv.Atoi(strings.TrimPrefix(line, prefix))
			return n
		}
	}
	t.Fatalf("no %s in /metrics", prefix)
	return 0
}

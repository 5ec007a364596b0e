package payswitch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

const openToBuy = 1_000_000

// sale sends a purchase and returns the request (for DE 90) and answer.
func sale(t *testing.T, term *terminal.Client, number string, amount int64) (*iso8583.Message, *iso8583.Message) {
	t.Helper()
	req, err := terminal.NewPurchaseMessage(specs.MustLoad(specs.TerminalDialect), terminal.Purchase{PAN: number, Amount: amount},
		term.NextSTAN(), time.Now(), terminal.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := term.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return req, resp
}

// cancelOf builds a 0400 naming orig in DE 90; remaining >= 0 adds DE 95
// with that actual amount (a partial cancel).
func cancelOf(t *testing.T, term *terminal.Client, orig *iso8583.Message, remaining int64) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	m.MTI("0400")
	stan, _ := orig.GetString(specs.STAN)
	de7, _ := orig.GetString(specs.TransmissionDateTime)
	for _, id := range []int{specs.ProcessingCode, specs.Amount, specs.TerminalID, specs.MerchantID, specs.Currency} {
		v, _ := orig.GetString(id)
		_ = m.Field(id, v)
	}
	_ = m.Field(specs.STAN, term.NextSTAN())
	_ = m.Field(specs.TransmissionDateTime, time.Now().UTC().Format("0102150405"))
	_ = m.Field(specs.OriginalData, "0200"+stan+de7+strings.Repeat("0", 22))
	if remaining >= 0 {
		_ = m.Field(specs.ReplacementAmounts, fmt.Sprintf("%012d", remaining)+strings.Repeat("0", 30))
	}
	return m
}

func send(t *testing.T, term *terminal.Client, m *iso8583.Message) string {
	t.Helper()
	resp, err := term.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := resp.GetString(specs.ResponseCode)
	return rc
}

func TestMerchantCancels(t *testing.T) {
	h := newHarness(t, "")
	term := h.linkedTerminal("card-a")
	iss := h.issuers["card-a"]
	const amount = 10000

	// Full cancel restores the balance.
	req, resp := sale(t, term, cardA, amount)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("sale %s", rc)
	}
	cancel := cancelOf(t, term, req, -1)
	if rc := send(t, term, cancel); rc != "00" {
		t.Fatalf("full cancel: %s", rc)
	}
	if b := iss.Balance(cardA); b != openToBuy {
		t.Fatalf("balance %d after a full cancel", b)
	}
	// An exact repeat gets the same answer and no second reversal.
	reversals := iss.Stats().Reversals
	if rc := send(t, term, cancel); rc != "00" || iss.Stats().Reversals != reversals {
		t.Fatalf("repeat of a cancel: %s, issuer reversals %d -> %d", rc, reversals, iss.Stats().Reversals)
	}
	// Nothing remains: another cancel is 13.
	if rc := send(t, term, cancelOf(t, term, req, -1)); rc != "13" {
		t.Fatalf("cancel of a cancelled sale: %s", rc)
	}

	// Partial cancels until nothing remains, then more is refused.
	req, _ = sale(t, term, cardA, amount)
	steps := []struct {
		remaining int64
		rc        string
		balance   int64
	}{
		{6000, "00", openToBuy - 6000},
		{6000, "13", openToBuy - 6000}, // DE 95 equal to what remains: nothing to cancel
		{9000, "13", openToBuy - 6000}, // more than remains
		{2500, "00", openToBuy - 2500},
		{0, "00", openToBuy},
	}
	for i, st := range steps {
		if rc := send(t, term, cancelOf(t, term, req, st.remaining)); rc != st.rc {
			t.Fatalf("partial step %d: %s, want %s", i, rc, st.rc)
		}
		if b := iss.Balance(cardA); b != st.balance {
			t.Fatalf("partial step %d: balance %d, want %d", i, b, st.balance)
		}
	}

	// Unknown original, another terminal's sale: 25 and no change.
	req, _ = sale(t, term, cardA, 700)
	unknown := cancelOf(t, term, req, -1)
	_ = unknown.Field(specs.OriginalData, "0200"+"999999"+"0101000000"+strings.Repeat("0", 22))
	other := cancelOf(t, term, req, -1)
	_ = other.Field(specs.TerminalID, "OTHER001")
	before := iss.Balance(cardA)
	for name, m := range map[string]*iso8583.Message{"unknown original": unknown, "another terminal's sale": other} {
		if rc := send(t, term, m); rc != "25" {
			t.Fatalf("%s: %s, want 25", name, rc)
		}
	}
	if iss.Balance(cardA) != before {
		t.Fatal("a refused cancel changed the balance")
	}
}

func TestCancelAfterOneTimeTokenIsConsumed(t *testing.T) {
	h := newHarness(t, "")
	term := h.linkedTerminal("card-b")
	tok, err := h.tokenAPI().Issue(context.Background(), cardB, "3012", tokenapi.IssueOptions{Kind: store.OneTimeToken})
	if err != nil {
		t.Fatal(err)
	}
	req, resp := sale(t, term, tok.Token, 4000)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("sale %s", rc)
	}
	if rc := send(t, term, cancelOf(t, term, req, -1)); rc != "00" {
		t.Fatalf("cancel of a one-time token sale: %s", rc)
	}
	if b := h.issuers["card-b"].Balance(cardB); b != openToBuy {
		t.Fatalf("balance %d", b)
	}
}

func TestRefundByRRN(t *testing.T) {
	h := newHarness(t, "")
	term := h.linkedTerminal("card-a")
	req, resp := sale(t, term, cardA, 9000)
	rrn, _ := resp.GetString(specs.RRN)
	auth, _ := resp.GetString(specs.ApprovalCode)
	refund := func(amount int64, rrn, auth string) string {
		m, _ := terminal.NewPurchaseMessage(specs.MustLoad(specs.TerminalDialect), terminal.Purchase{PAN: cardA, Amount: amount}, term.NextSTAN(), time.Now(), terminal.DefaultOptions())
		_ = m.Field(specs.ProcessingCode, "200000")
		_ = m.Field(specs.RRN, rrn)
		_ = m.Field(specs.ApprovalCode, auth)
		return send(t, term, m)
	}
	_ = req
	if rc := refund(4000, rrn, auth); rc != "00" {
		t.Fatalf("refund: %s", rc)
	}
	if rc := refund(6000, rrn, auth); rc != "13" {
		t.Fatalf("refund above what remains: %s", rc)
	}
	if rc := refund(100, rrn, "XXXXXX"); rc != "25" {
		t.Fatalf("refund with a wrong approval code: %s", rc)
	}
	if b := h.issuers["card-a"].Balance(cardA); b != openToBuy-5000 {
		t.Fatalf("balance %d after sale 9000 and refund 4000", b)
	}
}

// TestNetCancelAfterLostAnswer: the issuer approves and charges but its
// answer never comes; the terminal is told 91, the switch reverses the sale
// through the SAF queue once the issuer is back, and the customer ends up
// not charged. The terminal's own 0400 for the lost sale is answered 00
// without a second reversal, and a duplicate of the sale never charges.
func TestNetCancelAfterLostAnswer(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) { c.Journal.SAFInterval = 50 * time.Millisecond })
	term := h.linkedTerminal("card-a")
	iss := h.issuers["card-a"]
	iss.SetFault(issuer.Fault{ChargeWhenSilent: true})
	iss.SetMode(issuer.Silent)

	req, resp := sale(t, term, cardA, 30000)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "91" {
		t.Fatalf("sale with a lost answer: %s, want 91", rc)
	}
	// The issuer charged: the balance shows it, unless the switch's
	// reversal (queued before the 91 left, applied by the still silent
	// issuer too) already gave it back.
	if b, st := iss.Balance(cardA), iss.Stats(); b != openToBuy-30000 && (b != openToBuy || st.ReversalsApplied == 0) {
		t.Fatalf("issuer did not charge (balance %d, reversals applied %d): the test proves nothing", b, st.ReversalsApplied)
	}
	// The terminal repeats the sale (same key): stored answer, no charge.
	if resp, err := term.Send(context.Background(), req); err != nil {
		t.Fatal(err)
	} else if rc, _ := resp.GetString(specs.ResponseCode); rc != "91" {
		t.Fatalf("duplicate sale: %s", rc)
	}
	iss.SetMode(issuer.Normal)
	iss.SetFault(issuer.Fault{})
	waitFor(t, 15*time.Second, "the SAF reversal to restore the balance", func() bool { return iss.Balance(cardA) == openToBuy })
	// The terminal's own reversal for the sale it thinks failed.
	reversals := iss.Stats().Reversals
	if rc := send(t, term, cancelOf(t, term, req, -1)); rc != "00" {
		t.Fatalf("terminal reversal of the lost sale: %s", rc)
	}
	if iss.Balance(cardA) != openToBuy || iss.Stats().Reversals != reversals {
		t.Fatal("the terminal's reversal reversed twice")
	}
}

// TestPrepaidGivesBackByRefund: the prepaid host (gift certificates, local
// currency) takes no reversals; the switch gives money back with a 0200
// refund instead, for a merchant cancel and for a net cancel.
func TestPrepaidGivesBackByRefund(t *testing.T) {
	h, pre := prepaidHarness(t)
	term := h.terminal()

	req, resp := sale(t, term, gift, 7000)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("gift certificate sale: %s", rc)
	}
	if rc := send(t, term, cancelOf(t, term, req, -1)); rc != "00" {
		t.Fatalf("cancel on the prepaid host: %s", rc)
	}
	if b := pre.Balance(gift); b != openToBuy {
		t.Fatalf("balance %d after cancel by refund", b)
	}

	pre.SetFault(issuer.Fault{ChargeWhenSilent: true})
	pre.SetMode(issuer.Silent)
	if _, resp := sale(t, term, gift, 3000); resp != nil {
		if rc, _ := resp.GetString(specs.ResponseCode); rc != "91" {
			t.Fatalf("lost sale: %s", rc)
		}
	}
	pre.SetMode(issuer.Normal)
	pre.SetFault(issuer.Fault{})
	waitFor(t, 15*time.Second, "the net cancel refund", func() bool { return pre.Balance(gift) == openToBuy })
	if pre.Stats().Reversals != 0 {
		t.Fatal("the switch sent reversals to a host that takes none")
	}
}

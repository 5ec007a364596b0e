package issuer

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/specs"
)

var rrnSeq atomic.Int64

// buy sends an approved-or-not 0200 purchase with its own RRN and returns
// the request and the response code.
func buy(t *testing.T, c *connection.Connection, card string, amount int64) (*iso8583.Message, string) {
	t.Helper()
	req := purchase(t, "0200", card, fmt.Sprint(amount), "")
	req.Field(specs.RRN, fmt.Sprintf("5319%08d", rrnSeq.Add(1)))
	return req, get(send(t, c, req), specs.ResponseCode)
}

// de90 is the original data elements of orig as the switch sends them:
// MTI, STAN, DE 7, acquiring and forwarding institution ids zero-filled.
func de90(orig *iso8583.Message) string {
	mti, _ := orig.GetMTI()
	return mti + get(orig, specs.STAN) + get(orig, specs.TransmissionDateTime) + strings.Repeat("0", 22)
}

// reversalOf builds a reversal (0400, 0420 or 0421) of orig for amount,
// with its own new STAN and DE 7.
func reversalOf(t *testing.T, mti string, orig *iso8583.Message, amount int64) *iso8583.Message {
	t.Helper()
	return request(t, mti, map[int]string{
		specs.PAN: get(orig, specs.PAN), specs.ProcessingCode: get(orig, specs.ProcessingCode),
		specs.Amount: fmt.Sprintf("%012d", amount), specs.TransmissionDateTime: "1115100500",
		specs.RRN: get(orig, specs.RRN), specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT000001",
		specs.Currency: "410", specs.OriginalData: de90(orig),
	})
}

// resend returns a copy of m (same STAN and DE 7) with another MTI.
func resend(t *testing.T, m *iso8583.Message, mti string) *iso8583.Message {
	t.Helper()
	f := map[int]string{}
	for id := range m.GetFields() {
		if id > 1 {
			f[id] = get(m, id)
		}
	}
	return request(t, mti, f)
}

// reversalCounters keeps the reversal part of Stats.
func reversalCounters(s Stats) Stats {
	return Stats{Reversals: s.Reversals, ReversalsApplied: s.ReversalsApplied,
		ReversalsNothingLeft: s.ReversalsNothingLeft, ReversalsNoOriginal: s.ReversalsNoOriginal,
		ReversalsDuplicate: s.ReversalsDuplicate, ReversalsRejected: s.ReversalsRejected,
		ReversedAmount: s.ReversedAmount}
}

func TestReversals(t *testing.T) {
	const price = 15_000
	cardA, cardB := card("9410"), card("94105")
	// A step sends one reversal of the original purchase; build makes it
	// from the original and the previous reversal sent (nil at first).
	type step struct {
		build      func(t *testing.T, orig, prev *iso8583.Message) *iso8583.Message
		wantRC     string
		wantCredit int64
	}
	rev := func(mti string, amount int64, rc string, credit int64) step {
		return step{func(t *testing.T, orig, _ *iso8583.Message) *iso8583.Message {
			return reversalOf(t, mti, orig, amount)
		}, rc, credit}
	}
	again := func(mti string) step { // the previous reversal again, same DE 11 + DE 7
		return step{func(t *testing.T, _, prev *iso8583.Message) *iso8583.Message { return resend(t, prev, mti) }, "00", 0}
	}
	edit := func(mti string, amount int64, rc string, credit int64, f func(m *iso8583.Message)) step {
		return step{func(t *testing.T, orig, _ *iso8583.Message) *iso8583.Message {
			m := reversalOf(t, mti, orig, amount)
			f(m)
			return m
		}, rc, credit}
	}
	tests := []struct {
		name      string
		balance   int64 // cardA's opening balance (0: default)
		origMTI   string
		steps     []step
		remaining int64 // of the original afterwards (-1: no approval recorded)
		stats     Stats
	}{
		{name: "full reversal restores the balance", steps: []step{rev("0400", price, "00", price)},
			stats: Stats{Reversals: 1, ReversalsApplied: 1, ReversedAmount: price}},
		{name: "reversal advice", steps: []step{rev("0420", price, "00", price)},
			stats: Stats{Reversals: 1, ReversalsApplied: 1, ReversedAmount: price}},
		{name: "reversal of an authorisation", origMTI: "0100", steps: []step{rev("0400", price, "00", price)},
			stats: Stats{Reversals: 1, ReversalsApplied: 1, ReversedAmount: price}},
		{name: "partial then the rest then nothing left", steps: []step{
			rev("0400", 5_000, "00", 5_000), rev("0420", 10_000, "00", 10_000), rev("0400", 1_000, "00", 0)},
			stats: Stats{Reversals: 3, ReversalsApplied: 2, ReversalsNothingLeft: 1, ReversedAmount: price}},
		{name: "partial leaves the rest charged", steps: []step{rev("0400", 4_000, "00", 4_000)},
			remaining: 11_000, stats: Stats{Reversals: 1, ReversalsApplied: 1, ReversedAmount: 4_000}},
		{name: "over-reversal caps at what remains", steps: []step{
			rev("0400", 10_000, "00", 10_000), rev("0400", 99_000, "00", 5_000)},
			stats: Stats{Reversals: 2, ReversalsApplied: 2, ReversedAmount: price}},
		{name: "identical reversal twice", steps: []step{rev("0400", 5_000, "00", 5_000), again("0400")},
			remaining: 10_000, stats: Stats{Reversals: 2, ReversalsApplied: 1, ReversalsDuplicate: 1, ReversedAmount: 5_000}},
		{name: "0421 with the 0420's STAN", steps: []step{rev("0420", price, "00", price), again("0421"), again("0421")},
			stats: Stats{Reversals: 3, ReversalsApplied: 1, ReversalsDuplicate: 2, ReversedAmount: price}},
		{name: "0421 with a new STAN repeats the 0420", steps: []step{
			rev("0420", 5_000, "00", 5_000), rev("0421", 5_000, "00", 0)},
			remaining: 10_000, stats: Stats{Reversals: 2, ReversalsApplied: 1, ReversalsDuplicate: 1, ReversedAmount: 5_000}},
		{name: "0421 whose 0420 was lost applies", steps: []step{rev("0421", price, "00", price), rev("0421", price, "00", 0)},
			stats: Stats{Reversals: 2, ReversalsApplied: 1, ReversalsDuplicate: 1, ReversedAmount: price}},
		{name: "a second 0420 of the same amount is a new partial", steps: []step{
			rev("0420", 5_000, "00", 5_000), rev("0420", 5_000, "00", 5_000)},
			remaining: 5_000, stats: Stats{Reversals: 2, ReversalsApplied: 2, ReversedAmount: 10_000}},
		{name: "declined original", balance: 1_000, steps: []step{rev("0400", price, "00", 0), rev("0420", price, "00", 0)},
			remaining: -1, stats: Stats{Reversals: 2, ReversalsNoOriginal: 2}},
		{name: "unknown original", steps: []step{edit("0400", price, "00", 0, func(m *iso8583.Message) {
			m.Field(specs.OriginalData, "0200"+"999999"+"0101000000"+strings.Repeat("0", 22))
			m.Field(specs.RRN, "000000000000")
		})}, remaining: price, stats: Stats{Reversals: 1, ReversalsNoOriginal: 1}},
		{name: "found by RRN when DE 90 does not match", steps: []step{edit("0400", price, "00", price, func(m *iso8583.Message) {
			m.Field(specs.OriginalData, "0200"+"999999"+"0101000000"+strings.Repeat("0", 22))
		})}, stats: Stats{Reversals: 1, ReversalsApplied: 1, ReversedAmount: price}},
		{name: "another card never matches", steps: []step{edit("0400", price, "00", 0, func(m *iso8583.Message) {
			m.Field(specs.PAN, cardB)
		})}, remaining: price, stats: Stats{Reversals: 1, ReversalsNoOriginal: 1}},
		{name: "no DE 90", steps: []step{edit("0400", price, "30", 0, func(m *iso8583.Message) { m.UnsetField(specs.OriginalData) })},
			remaining: price, stats: Stats{Reversals: 1, ReversalsRejected: 1}},
		{name: "DE 90 not digits", steps: []step{edit("0420", price, "30", 0, func(m *iso8583.Message) {
			m.Field(specs.OriginalData, strings.Repeat("X", 42))
		})}, remaining: price, stats: Stats{Reversals: 1, ReversalsRejected: 1}},
		{name: "no DE 4", steps: []step{edit("0400", price, "30", 0, func(m *iso8583.Message) { m.UnsetField(specs.Amount) })},
			remaining: price, stats: Stats{Reversals: 1, ReversalsRejected: 1}},
		{name: "DE 4 zero", steps: []step{rev("0400", 0, "30", 0)},
			remaining: price, stats: Stats{Reversals: 1, ReversalsRejected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := newIssuer(t, nil, func(c *Config) {
				if tt.balance != 0 {
					c.Balances = map[string]int64{cardA: tt.balance}
				}
			})
			c := dial(t, is)
			opening := is.Balance(cardA)
			mti := tt.origMTI
			if mti == "" {
				mti = "0200"
			}
			orig := purchase(t, mti, cardA, fmt.Sprint(price), "")
			orig.Field(specs.RRN, fmt.Sprintf("5319%08d", rrnSeq.Add(1)))
			send(t, c, orig)
			var prev *iso8583.Message
			for i, st := range tt.steps {
				req := st.build(t, orig, prev)
				before := is.Balance(cardA)
				resp := send(t, c, req)
				reqMTI, _ := req.GetMTI()
				wantMTI, _ := specs.ResponseMTI(reqMTI)
				if m, _ := resp.GetMTI(); m != wantMTI {
					t.Errorf("step %d: response MTI %s, want %s", i, m, wantMTI)
				}
				if rc := get(resp, specs.ResponseCode); rc != st.wantRC {
					t.Errorf("step %d (%s): DE 39 = %q, want %q", i, reqMTI, rc, st.wantRC)
				}
				for _, id := range []int{specs.STAN, specs.TransmissionDateTime, specs.Amount, specs.OriginalData, specs.RRN} {
					if get(resp, id) != get(req, id) {
						t.Errorf("step %d: DE %d = %q, want echo %q", i, id, get(resp, id), get(req, id))
					}
				}
				if got := is.Balance(cardA) - before; got != st.wantCredit {
					t.Errorf("step %d (%s): credited %d, want %d", i, reqMTI, got, st.wantCredit)
				}
				prev = req
			}
			wantRemaining := tt.remaining
			list := is.Approvals()
			switch {
			case wantRemaining < 0:
				if len(list) != 0 {
					t.Errorf("approvals %+v, want none", list)
				}
			case len(list) != 1:
				t.Errorf("%d approvals, want 1", len(list))
			default:
				a := list[0]
				if a.Remaining != wantRemaining || a.Reversed != price-wantRemaining || a.Amount != price {
					t.Errorf("approval amount %d reversed %d remaining %d, want remaining %d", a.Amount, a.Reversed, a.Remaining, wantRemaining)
				}
				if a.STAN != get(orig, specs.STAN) || a.TransmissionDateTime != "1115100000" || a.RRN != get(orig, specs.RRN) ||
					a.PAN != cardA || a.MaskedPAN != "941000******0005" || a.MTI != mti || len(a.ApprovalCode) != 6 {
					t.Errorf("approval %+v", a)
				}
				if got := is.Balance(cardA); got != opening-wantRemaining {
					t.Errorf("balance %d, want %d", got, opening-wantRemaining)
				}
			}
			if got := reversalCounters(is.Stats()); got != tt.stats {
				t.Errorf("stats %+v\nwant  %+v", got, tt.stats)
			}
			s := is.Stats()
			if sum := s.ReversalsApplied + s.ReversalsNothingLeft + s.ReversalsNoOriginal + s.ReversalsDuplicate + s.ReversalsRejected; sum != s.Reversals {
				t.Errorf("reversal counters add up to %d, Reversals = %d", sum, s.Reversals)
			}
		})
	}
}

// The same reversal on many links at once, and many partial reversals at
// once: one credit each, never more than the original.
func TestConcurrentReversals(t *testing.T) {
	const links, price = 8, 16_000
	cardA := card("9410")
	is := newIssuer(t, nil, nil)
	conns := make([]*connection.Connection, links)
	for i := range conns {
		conns[i] = dial(t, is)
	}
	orig, rc := buy(t, conns[0], cardA, price)
	if rc != "00" {
		t.Fatalf("purchase DE 39 %s", rc)
	}
	same := reversalOf(t, "0420", orig, price/4)
	copies := make([]*iso8583.Message, links)
	partials := make([]*iso8583.Message, links)
	for i := range copies {
		copies[i] = resend(t, same, "0420")
		partials[i] = reversalOf(t, "0400", orig, price/4)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Send(copies[i])
			if err != nil {
				t.Errorf("send: %v", err)
			} else if rc := get(resp, specs.ResponseCode); rc != "00" {
				t.Errorf("DE 39 %s", rc)
			}
		}()
	}
	wg.Wait()
	if got := is.Balance(cardA); got != DefaultOpenToBuy-price+price/4 {
		t.Fatalf("after %d copies of one reversal: balance %d, want one credit of %d", links, got, price/4)
	}
	for i, c := range conns { // 8 distinct partials of 1/4: only 3/4 remain to reverse
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(partials[i]); err != nil {
				t.Errorf("send: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := is.Balance(cardA); got != DefaultOpenToBuy {
		t.Errorf("balance %d, want %d restored exactly", got, DefaultOpenToBuy)
	}
	if s := is.Stats(); s.ReversalsApplied != 4 || s.ReversalsDuplicate != links-1 || s.ReversalsNothingLeft != links-3 || s.ReversedAmount != price {
		t.Errorf("stats %+v", s)
	}
}

func TestPrepaidRefusesReversalsTakesRefunds(t *testing.T) {
	const price = 30_000
	gift := card("9430")
	is := newIssuer(t, nil, func(c *Config) { c.Name, c.BINs, c.Reversals = "prepaid", []string{"9430"}, Bool(false) })
	c := dial(t, is)
	orig, rc := buy(t, c, gift, price)
	if rc != "00" {
		t.Fatalf("purchase DE 39 %s", rc)
	}
	for _, mti := range []string{"0400", "0420", "0421"} {
		if rc := get(send(t, c, reversalOf(t, mti, orig, price)), specs.ResponseCode); rc != "12" {
			t.Errorf("%s: DE 39 %q, want 12", mti, rc)
		}
	}
	if b := is.Balance(gift); b != DefaultOpenToBuy-price {
		t.Fatalf("balance %d after refused reversals, want %d", b, DefaultOpenToBuy-price)
	}
	refund := purchase(t, "0200", gift, fmt.Sprint(price), "")
	refund.Field(specs.ProcessingCode, "200000")
	refund.Field(specs.RRN, get(orig, specs.RRN)) // the switch names the original by RRN
	resp := send(t, c, refund)
	if rc, code := get(resp, specs.ResponseCode), get(resp, specs.ApprovalCode); rc != "00" || len(code) != 6 {
		t.Errorf("refund DE 39 %q DE 38 %q", rc, code)
	}
	if b := is.Balance(gift); b != DefaultOpenToBuy {
		t.Errorf("balance %d after the refund, want %d", b, DefaultOpenToBuy)
	}
	// A refund of a card the issuer does not own is refused.
	bad := purchase(t, "0200", card("9410"), "1000", "")
	bad.Field(specs.ProcessingCode, "200000")
	if rc := get(send(t, c, bad), specs.ResponseCode); rc != "14" {
		t.Errorf("foreign refund DE 39 %q, want 14", rc)
	}
	want := Stats{Approved: 1, Declined: 1, Reversals: 3, ReversalsRejected: 3, Refunds: 1, RefundedAmount: price}
	if s := is.Stats(); s != want {
		t.Errorf("stats %+v\nwant  %+v", s, want)
	}
}

func TestReversalLogsNeverCarryFullPAN(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	is := newIssuer(t, zap.New(core), nil)
	c := dial(t, is)
	cardA := card("9410")
	orig, _ := buy(t, c, cardA, 1_000)
	send(t, c, reversalOf(t, "0400", orig, 1_000))
	send(t, c, reversalOf(t, "0420", orig, 1_000))
	refund := purchase(t, "0200", cardA, "500", "")
	refund.Field(specs.ProcessingCode, "200000")
	send(t, c, refund)
	is.SetFault(Fault{Disconnect: true})
	c.Send(purchase(t, "0200", cardA, "1000", "")) //nolint:errcheck // the link drops
	is.Close()
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, cardA) {
			t.Errorf("log line carries a full PAN: %s", line)
		}
	}
	if logs.FilterMessage("reversal decided").Len() != 2 || logs.FilterMessage("refund credited").Len() != 1 {
		t.Error("reversals and refunds not logged")
	}
}

package issuer

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/specs"
)

// refundOf builds the switch's refund by reference of orig for amount
// (0200, DE 3 20 + the original's digits 3-6, DE 90 and DE 37 naming the
// original as the issuer received it), with its own new STAN and DE 7.
func refundOf(t *testing.T, orig *iso8583.Message, amount int64) *iso8583.Message {
	t.Helper()
	return request(t, specs.MTIFinancialRequest, map[int]string{
		specs.PAN: get(orig, specs.PAN), specs.ProcessingCode: "20" + get(orig, specs.ProcessingCode)[2:],
		specs.Amount: fmt.Sprintf("%012d", amount), specs.TransmissionDateTime: "1115101000",
		specs.RRN: get(orig, specs.RRN), specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT000001",
		specs.Currency: "410", specs.OriginalData: de90(orig),
	})
}

// refundCounters keeps the refund part of Stats.
func refundCounters(s Stats) Stats {
	return Stats{Refunds: s.Refunds, RefundedAmount: s.RefundedAmount, RefundsDuplicate: s.RefundsDuplicate,
		RefundsNoOriginal: s.RefundsNoOriginal, RefundsNothingLeft: s.RefundsNothingLeft,
		RefundsNotCaptured: s.RefundsNotCaptured}
}

// refundHosts are the two kinds of host a refund by reference reaches: a
// refund-only (prepaid) host and a card host that also takes reversals.
var refundHosts = []struct {
	name, bin string
	reversals bool
}{
	{"prepaid", "9430", false},
	{"card", "9410", true},
}

// newRefundHost starts host h with cardA's opening balance (0: default).
func newRefundHost(t *testing.T, name, bin string, reversals bool, balanceA int64) *Issuer {
	t.Helper()
	return newIssuer(t, nil, func(c *Config) {
		c.Name, c.BINs, c.Reversals = name, []string{bin}, Bool(reversals)
		if balanceA != 0 {
			c.Balances = map[string]int64{card(bin): balanceA}
		}
	})
}

func TestRefundsByReference(t *testing.T) {
	const price = 15_000
	// A step sends one refund; build makes it from the original sale, the
	// refunds sent so far and the two cards (the sale's and another one of
	// the host's).
	type step struct {
		build      func(t *testing.T, orig *iso8583.Message, sent []*iso8583.Message, cardB string) *iso8583.Message
		wantRC     string
		wantCredit int64 // to cardA and cardB together
		sameAs     int   // index+1 of the step whose DE 38 this one repeats (0: a fresh code or none)
	}
	ref := func(amount int64, rc string, credit int64) step {
		return step{build: func(t *testing.T, orig *iso8583.Message, _ []*iso8583.Message, _ string) *iso8583.Message {
			return refundOf(t, orig, amount)
		}, wantRC: rc, wantCredit: credit}
	}
	again := func(i int, rc string) step { // step i's refund again: same DE 11, DE 7, DE 37
		return step{build: func(t *testing.T, _ *iso8583.Message, sent []*iso8583.Message, _ string) *iso8583.Message {
			return resend(t, sent[i], specs.MTIFinancialRequest)
		}, wantRC: rc, sameAs: i + 1}
	}
	edit := func(amount int64, rc string, credit int64, f func(m *iso8583.Message, cardB string)) step {
		return step{build: func(t *testing.T, orig *iso8583.Message, _ []*iso8583.Message, cardB string) *iso8583.Message {
			m := refundOf(t, orig, amount)
			f(m, cardB)
			return m
		}, wantRC: rc, wantCredit: credit}
	}
	otherOriginal := func(m *iso8583.Message, _ string) {
		m.Field(specs.OriginalData, "0200"+"999999"+"0101000000"+strings.Repeat("0", 22))
	}
	tests := []struct {
		name      string
		balance   int64  // cardA's opening balance (0: default)
		origMTI   string // "" : 0200
		silent    bool   // the host neither answers nor applies the sale
		steps     []step
		remaining int64 // of the original afterwards (-1: no approval recorded)
		stats     Stats // the refund counters afterwards
	}{
		{name: "approved sale: credited once, repeats answered alike", steps: []step{
			ref(price, "00", price), again(0, "00"), again(0, "00")},
			stats: Stats{Refunds: 1, RefundedAmount: price, RefundsDuplicate: 2}},
		{name: "sale the silent host never applied", silent: true, steps: []step{
			ref(price, "25", 0), again(0, "25")}, remaining: -1,
			stats: Stats{RefundsNoOriginal: 1, RefundsDuplicate: 1}},
		{name: "declined sale", balance: 1_000, steps: []step{ref(price, "25", 0), again(0, "25")}, remaining: -1,
			stats: Stats{RefundsNoOriginal: 1, RefundsDuplicate: 1}},
		{name: "partial then the rest then nothing left", steps: []step{
			ref(5_000, "00", 5_000), ref(10_000, "00", 10_000), ref(1_000, "25", 0),
			again(0, "00"), again(2, "25")},
			stats: Stats{Refunds: 2, RefundedAmount: price, RefundsNothingLeft: 1, RefundsDuplicate: 2}},
		{name: "partial leaves the rest charged", steps: []step{ref(4_000, "00", 4_000)}, remaining: 11_000,
			stats: Stats{Refunds: 1, RefundedAmount: 4_000}},
		{name: "more than remains credits what remains", steps: []step{
			ref(10_000, "00", 10_000), ref(99_000, "00", 5_000), again(1, "00")},
			stats: Stats{Refunds: 2, RefundedAmount: price, RefundsDuplicate: 1}},
		{name: "authorisation original is not refunded", origMTI: "0100", steps: []step{
			ref(price, "12", 0), again(0, "12")}, remaining: price,
			stats: Stats{RefundsNotCaptured: 1, RefundsDuplicate: 1}},
		{name: "unknown original", steps: []step{edit(price, "25", 0, func(m *iso8583.Message, cardB string) {
			otherOriginal(m, cardB)
			m.Field(specs.RRN, "000000000000")
		})}, remaining: price, stats: Stats{RefundsNoOriginal: 1}},
		{name: "found by RRN when DE 90 does not match", steps: []step{edit(price, "00", price, otherOriginal)},
			stats: Stats{Refunds: 1, RefundedAmount: price}},
		{name: "another card never matches", steps: []step{edit(price, "25", 0, func(m *iso8583.Message, cardB string) {
			m.Field(specs.PAN, cardB)
		})}, remaining: price, stats: Stats{RefundsNoOriginal: 1}},
		{name: "DE 90 not digits", steps: []step{edit(price, "30", 0, func(m *iso8583.Message, _ string) {
			m.Field(specs.OriginalData, strings.Repeat("X", 42))
		})}, remaining: price},
		{name: "standalone refund credited once", steps: []step{
			edit(price, "00", price, func(m *iso8583.Message, _ string) { m.UnsetField(specs.OriginalData) }),
			again(0, "00"), again(0, "00")}, remaining: price,
			stats: Stats{Refunds: 1, RefundedAmount: price, RefundsDuplicate: 2}},
	}
	for _, h := range refundHosts {
		for _, tt := range tests {
			t.Run(h.name+"/"+tt.name, func(t *testing.T) {
				is := newRefundHost(t, h.name, h.bin, h.reversals, tt.balance)
				cardA, cardB := card(h.bin), card(h.bin+"5")
				c := dial(t, is)
				mti := tt.origMTI
				if mti == "" {
					mti = specs.MTIFinancialRequest
				}
				orig := purchase(t, mti, cardA, fmt.Sprint(price), "")
				orig.Field(specs.RRN, fmt.Sprintf("5319%08d", rrnSeq.Add(1)))
				if tt.silent {
					is.SetMode(Silent)
					if r := is.process(orig, nil); r.resp != nil {
						t.Fatal("a silent host answered the sale")
					}
					is.SetMode(Normal)
				} else {
					send(t, c, orig)
				}
				var sent []*iso8583.Message
				var codes []string
				for i, st := range tt.steps {
					req := st.build(t, orig, sent, cardB)
					before := is.Balance(cardA) + is.Balance(cardB)
					resp := send(t, c, req)
					if m, _ := resp.GetMTI(); m != specs.MTIFinancialResponse {
						t.Errorf("step %d: response MTI %s, want 0210", i, m)
					}
					if rc := get(resp, specs.ResponseCode); rc != st.wantRC {
						t.Errorf("step %d: DE 39 = %q, want %q", i, rc, st.wantRC)
					}
					for _, id := range []int{specs.STAN, specs.TransmissionDateTime, specs.Amount, specs.RRN, specs.OriginalData} {
						if get(resp, id) != get(req, id) {
							t.Errorf("step %d: DE %d = %q, want echo %q", i, id, get(resp, id), get(req, id))
						}
					}
					code := get(resp, specs.ApprovalCode)
					switch {
					case st.sameAs > 0 && code != codes[st.sameAs-1]:
						t.Errorf("step %d: DE 38 %q, want the first answer's %q", i, code, codes[st.sameAs-1])
					case st.sameAs == 0 && st.wantRC == "00" && len(code) != 6:
						t.Errorf("step %d: DE 38 %q, want an approval code", i, code)
					case st.wantRC != "00" && code != "":
						t.Errorf("step %d: DE 38 %q on a refusal", i, code)
					}
					if got := is.Balance(cardA) + is.Balance(cardB) - before; got != st.wantCredit {
						t.Errorf("step %d: credited %d, want %d", i, got, st.wantCredit)
					}
					sent, codes = append(sent, req), append(codes, code)
				}
				list := is.Approvals()
				switch {
				case tt.remaining < 0:
					if len(list) != 0 {
						t.Errorf("approvals %+v, want none", list)
					}
				case len(list) != 1:
					t.Errorf("%d approvals, want 1", len(list))
				case list[0].Remaining != tt.remaining || list[0].Refunded != price-tt.remaining || list[0].Reversed != 0:
					t.Errorf("approval %+v, want remaining %d", list[0], tt.remaining)
				}
				if got := refundCounters(is.Stats()); got != tt.stats {
					t.Errorf("stats %+v\nwant  %+v", got, tt.stats)
				}
			})
		}
	}
}

// The same refund on many links at once, and many partial refunds at
// once: one credit each, never more than the original.
func TestConcurrentRefunds(t *testing.T) {
	const links, price = 8, 16_000
	for _, h := range refundHosts {
		t.Run(h.name, func(t *testing.T) {
			gift := card(h.bin)
			is := newRefundHost(t, h.name, h.bin, h.reversals, 0)
			conns := make([]*connection.Connection, links)
			for i := range conns {
				conns[i] = dial(t, is)
			}
			orig, rc := buy(t, conns[0], gift, price)
			if rc != "00" {
				t.Fatalf("purchase DE 39 %s", rc)
			}
			same := refundOf(t, orig, price/4)
			copies := make([]*iso8583.Message, links)
			partials := make([]*iso8583.Message, links)
			for i := range copies {
				copies[i] = resend(t, same, specs.MTIFinancialRequest)
				partials[i] = refundOf(t, orig, price/4)
			}
			answers := make([]string, links)
			sendAll := func(reqs []*iso8583.Message) {
				var wg sync.WaitGroup
				for i, c := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := c.Send(reqs[i])
						if err != nil {
							t.Errorf("send: %v", err)
							return
						}
						answers[i] = get(resp, specs.ResponseCode) + "/" + get(resp, specs.ApprovalCode)
					}()
				}
				wg.Wait()
			}
			sendAll(copies)
			if got := is.Balance(gift); got != DefaultOpenToBuy-price+price/4 {
				t.Fatalf("after %d copies of one refund: balance %d, want one credit of %d", links, got, price/4)
			}
			for _, a := range answers {
				if a != answers[0] || !strings.HasPrefix(a, "00/") {
					t.Fatalf("copies answered %v, want one answer with one approval code", answers)
				}
			}
			sendAll(partials) // 8 distinct partials of 1/4: only 3/4 remain to give back
			if got := is.Balance(gift); got != DefaultOpenToBuy {
				t.Errorf("balance %d, want %d restored exactly", got, DefaultOpenToBuy)
			}
		})
	}
}

// On a card host, reversals and refunds by reference give back from the
// same original: together never more than it.
func TestRefundAndReversalShareTheOriginal(t *testing.T) {
	const price = 12_000
	cardA := card("9410")
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	orig, _ := buy(t, c, cardA, price)
	if rc := get(send(t, c, reversalOf(t, "0400", orig, 5_000)), specs.ResponseCode); rc != "00" {
		t.Fatalf("reversal DE 39 %q", rc)
	}
	if rc := get(send(t, c, refundOf(t, orig, price)), specs.ResponseCode); rc != "00" {
		t.Fatalf("refund DE 39 %q", rc)
	}
	if b := is.Balance(cardA); b != DefaultOpenToBuy {
		t.Fatalf("balance %d, want %d", b, DefaultOpenToBuy)
	}
	if rc := get(send(t, c, reversalOf(t, "0400", orig, price)), specs.ResponseCode); rc != "00" {
		t.Errorf("late reversal DE 39 %q", rc)
	}
	if rc := get(send(t, c, refundOf(t, orig, 1)), specs.ResponseCode); rc != "25" {
		t.Errorf("refund of a fully given back sale DE 39 %q, want 25", rc)
	}
	if b := is.Balance(cardA); b != DefaultOpenToBuy {
		t.Errorf("balance %d after giving back twice, want %d", b, DefaultOpenToBuy)
	}
}

func TestRecallForgetsTheOldestHalf(t *testing.T) {
	r := newRecall[int](4)
	r.put("", 1) // no identity: never remembered
	for i, k := range []string{"a", "b", "c", "d", "a", "e"} {
		r.put(k, i)
	}
	for k, want := range map[string]bool{"": false, "a": false, "b": false, "c": true, "d": true, "e": true} {
		if _, ok := r.get(k); ok != want {
			t.Errorf("%q remembered %v, want %v", k, ok, want)
		}
	}
	if v, _ := r.get("e"); v != 5 || len(r.order) != 3 {
		t.Errorf("e = %d, %d keys kept", v, len(r.order))
	}
}

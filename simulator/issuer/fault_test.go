package issuer

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/specs"
)

// Unanswered requests: Silent or DropPercent, applied or not.
func TestUnansweredRequestsChargedOrNot(t *testing.T) {
	const price = 7_000
	tests := []struct {
		name       string
		silent     bool
		fault      Fault
		wantCharge bool
	}{
		{"silent, not applied (default)", true, Fault{}, false},
		{"silent, charged: lost response", true, Fault{ChargeWhenSilent: true}, true},
		{"drop 100%, not applied", false, Fault{DropPercent: 100}, false},
		{"drop 100%, charged", false, Fault{DropPercent: 100, ChargeWhenSilent: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cardA := card("9410")
			is := newIssuer(t, nil, nil)
			c := dial(t, is)
			if tt.silent {
				is.SetMode(Silent)
			}
			is.SetFault(tt.fault)
			orig := purchase(t, "0200", cardA, "7000", "")
			_, err := c.Send(orig, connection.SendTimeout(300*time.Millisecond))
			if !errors.Is(err, connection.ErrSendTimeout) {
				t.Fatalf("err %v, want a send timeout", err)
			}
			if rc := get(send(t, c, netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
				t.Errorf("echo DE 39 %q: network management must still be answered", rc)
			}
			charged := is.Balance(cardA) == DefaultOpenToBuy-price
			if charged != tt.wantCharge || (!charged && is.Balance(cardA) != DefaultOpenToBuy) {
				t.Fatalf("balance %d, want charged=%v", is.Balance(cardA), tt.wantCharge)
			}
			if n := len(is.Approvals()); n != map[bool]int{true: 1, false: 0}[tt.wantCharge] {
				t.Errorf("%d approvals recorded", n)
			}
			// The switch's net cancel once the issuer answers again.
			is.SetMode(Normal)
			is.SetFault(Fault{})
			resp := send(t, c, reversalOf(t, "0420", orig, price))
			if rc := get(resp, specs.ResponseCode); rc != "00" {
				t.Errorf("net cancel DE 39 %q", rc)
			}
			if b := is.Balance(cardA); b != DefaultOpenToBuy {
				t.Errorf("balance %d after the net cancel, want %d", b, DefaultOpenToBuy)
			}
			s := is.Stats()
			if tt.wantCharge && (s.Approved != 1 || s.ReversalsApplied != 1) || !tt.wantCharge && (s.Approved != 0 || s.ReversalsNoOriginal != 1) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// A silent issuer charging without answering also applies reversals
// without answering them: the switch's SAF repeats them (0421), and the
// repeats do not credit twice.
func TestSilentChargedReversalRepeats(t *testing.T) {
	cardA := card("9410")
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	orig, _ := buy(t, c, cardA, 5_000)
	is.SetMode(Silent)
	is.SetFault(Fault{ChargeWhenSilent: true})
	advice := reversalOf(t, "0420", orig, 5_000)
	if _, err := c.Send(advice, connection.SendTimeout(200*time.Millisecond)); !errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("err %v, want a send timeout", err)
	}
	is.SetMode(Normal)
	for range 2 {
		if rc := get(send(t, c, resend(t, advice, "0421")), specs.ResponseCode); rc != "00" {
			t.Errorf("0421 DE 39 %q", rc)
		}
	}
	if b := is.Balance(cardA); b != DefaultOpenToBuy {
		t.Errorf("balance %d, want %d", b, DefaultOpenToBuy)
	}
	if s := is.Stats(); s.ReversalsApplied != 1 || s.ReversalsDuplicate != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestDropPercentDropsAShare(t *testing.T) {
	const n = 40
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	is.SetFault(Fault{DropPercent: 50})
	reqs := make([]*iso8583.Message, n)
	for i := range reqs {
		reqs[i] = purchase(t, "0200", card("9410"), "100", "")
	}
	var mu sync.Mutex
	answered := 0
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Send(req, connection.SendTimeout(time.Second))
			switch {
			case err == nil:
				mu.Lock()
				answered++
				mu.Unlock()
			case !errors.Is(err, connection.ErrSendTimeout):
				t.Errorf("send: %v", err)
			}
		}()
	}
	wg.Wait()
	// P(all or none of 40 dropped at 50%) is about 2e-12.
	if answered == 0 || answered == n {
		t.Errorf("%d of %d answered at 50%% drop", answered, n)
	}
	if got := DefaultOpenToBuy - is.Balance(card("9410")); got != int64(answered)*100 {
		t.Errorf("charged %d for %d answered requests (dropped ones are not applied)", got, answered)
	}
}

func TestLateByAddsToLatency(t *testing.T) {
	const latency, late = 100 * time.Millisecond, 300 * time.Millisecond
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	is.SetLatency(latency)
	is.SetFault(Fault{LateBy: late})
	start := time.Now()
	if rc := get(send(t, c, purchase(t, "0200", card("9410"), "1000", "")), specs.ResponseCode); rc != "00" {
		t.Errorf("DE 39 %q", rc)
	}
	if d := time.Since(start); d < latency+late {
		t.Errorf("answered after %s, want >= %s", d, latency+late)
	}
	// The charge happens on receipt, not when the late answer goes out.
	is.SetFault(Fault{LateBy: time.Hour})
	go c.Send(purchase(t, "0200", card("9410"), "1000", "")) //nolint:errcheck // answered after the test
	waitFor(t, "the late purchase to be charged", func() bool { return is.Balance(card("9410")) == DefaultOpenToBuy-2_000 })
	start = time.Now()
	send(t, c, netMgmt(t, specs.NetMgmtEcho))
	if d := time.Since(start); d >= latency {
		t.Errorf("echo answered after %s: network management is never delayed", d)
	}
	is.Close() // drops the late answer at once
}

func TestDisconnectChargesThenDropsTheLink(t *testing.T) {
	cardA := card("9410")
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	is.SetFault(Fault{Disconnect: true})
	// Network management does not trigger it.
	if rc := get(send(t, c, netMgmt(t, specs.NetMgmtSignOn)), specs.ResponseCode); rc != "00" {
		t.Fatalf("sign-on DE 39 %q", rc)
	}
	start := time.Now()
	_, err := c.Send(purchase(t, "0200", cardA, "9000", ""), connection.SendTimeout(5*time.Second))
	if err == nil {
		t.Fatal("the purchase was answered; want the link dropped")
	}
	if errors.Is(err, connection.ErrSendTimeout) || time.Since(start) > 3*time.Second {
		t.Errorf("err %v after %s: want the connection closed at once", err, time.Since(start))
	}
	if b := is.Balance(cardA); b != DefaultOpenToBuy-9_000 {
		t.Errorf("balance %d: the request must be applied before the link drops", b)
	}
	waitFor(t, "the connection to close", func() bool { return is.Connections() == 0 })
	if is.Fault().Disconnect {
		t.Error("Disconnect still set after it fired")
	}
	// It fired once: a new link is served normally.
	c2 := dial(t, is)
	list := is.Approvals()
	if len(list) != 1 {
		t.Fatalf("%d approvals", len(list))
	}
	orig := purchase(t, "0200", cardA, "9000", "")
	orig.Field(specs.STAN, list[0].STAN)
	if rc := get(send(t, c2, reversalOf(t, "0420", orig, 9_000)), specs.ResponseCode); rc != "00" {
		t.Errorf("net cancel DE 39 %q", rc)
	}
	if b := is.Balance(cardA); b != DefaultOpenToBuy {
		t.Errorf("balance %d after the net cancel", b)
	}
}

func TestSetFaultClamps(t *testing.T) {
	is := newIssuer(t, nil, nil)
	is.SetFault(Fault{DropPercent: 150, LateBy: -time.Second})
	if f := is.Fault(); f.DropPercent != 100 || f.LateBy != 0 {
		t.Errorf("Fault() = %+v", f)
	}
	is.SetFault(Fault{DropPercent: -5})
	if f := is.Fault(); f.DropPercent != 0 {
		t.Errorf("Fault() = %+v", f)
	}
}

package issuer

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/iso/frame"
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
	testnet.Eventually(t, 5*time.Second, "the late purchase to be charged", func() bool { return is.Balance(card("9410")) == DefaultOpenToBuy-2_000 })
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
	testnet.Eventually(t, 5*time.Second, "the connection to close", func() bool { return is.Connections() == 0 })
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

// One draw per request splits drop, garbage and wrong STAN by their
// shares; LatePercent delays its own share. Checked on the request path
// without a connection or any sleep.
func TestFaultSharesSeeded(t *testing.T) {
	const n = 4000
	is := newIssuer(t, nil, func(c *Config) { c.Seed = 11 })
	is.SetFault(Fault{DropPercent: 10, GarbagePercent: 20, WrongSTANPercent: 30, LateBy: time.Second, LatePercent: 25})
	var dropped, garbage, wrong, late, normal int
	for range n {
		req := purchase(t, "0200", card("9410"), "1", "")
		r := is.process(req, nil)
		if r.delay == time.Second {
			late++
		} else if r.delay != 0 {
			t.Fatalf("delay %s", r.delay)
		}
		switch {
		case r.resp == nil:
			dropped++
		case r.garbage != nil:
			garbage++
		case get(r.resp, specs.STAN) != get(req, specs.STAN):
			wrong++
			if rc := get(r.resp, specs.ResponseCode); rc != "00" {
				t.Fatalf("wrong-STAN answer DE 39 %q", rc)
			}
		default:
			normal++
		}
	}
	is.ClearReceived()
	for _, c := range []struct {
		name     string
		got, pct int
	}{{"dropped", dropped, 10}, {"garbage", garbage, 20}, {"wrong STAN", wrong, 30}, {"normal", normal, 40}, {"late", late, 25}} {
		// 4000 draws: a standard deviation is under 0.8 points.
		if share := 100 * float64(c.got) / n; share < float64(c.pct)-3 || share > float64(c.pct)+3 {
			t.Errorf("%s %.1f%%, want about %d%%", c.name, share, c.pct)
		}
	}
	// Dropped requests are not applied (ChargeWhenSilent false); garbage
	// and wrong-STAN answers are to applied requests.
	if got, want := DefaultOpenToBuy-is.Balance(card("9410")), int64(n-dropped); got != want {
		t.Errorf("charged %d, want %d", got, want)
	}
	// LatePercent 0: every answer is late.
	is.SetFault(Fault{LateBy: time.Second})
	for range 20 {
		if r := is.process(purchase(t, "0200", card("9410"), "1", ""), nil); r.delay != time.Second {
			t.Fatalf("delay %s with LatePercent 0", r.delay)
		}
	}
}

func TestFaultValidate(t *testing.T) {
	bad := []struct {
		f       Fault
		wantErr string
	}{
		{Fault{DropPercent: 101}, "drop_percent 101"},
		{Fault{GarbagePercent: -1}, "garbage_percent -1"},
		{Fault{WrongSTANPercent: 200}, "wrong_stan_percent"},
		{Fault{LatePercent: 101}, "late_percent"},
		{Fault{DropPercent: 50, GarbagePercent: 40, WrongSTANPercent: 11}, "add up to 101"},
		{Fault{LateBy: -time.Second}, "negative"},
	}
	for _, tt := range bad {
		if err := tt.f.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%+v: error %v, want %q", tt.f, err, tt.wantErr)
		}
	}
	if err := (Fault{DropPercent: 50, GarbagePercent: 30, WrongSTANPercent: 20, LatePercent: 100}).Validate(); err != nil {
		t.Error(err)
	}
	is := newIssuer(t, nil, nil)
	is.SetFault(Fault{DropPercent: 70, GarbagePercent: 50, WrongSTANPercent: 10, LatePercent: 300})
	if f := is.Fault(); f.DropPercent != 70 || f.GarbagePercent != 30 || f.WrongSTANPercent != 0 || f.LatePercent != 100 {
		t.Errorf("clamped to %+v", f)
	}
}

// rawExchange writes req on a plain TCP connection and returns the frame
// body of the answer.
func rawExchange(t *testing.T, is *Issuer, req *iso8583.Message) []byte {
	t.Helper()
	codec := &frame.Codec{Header: frame.ASCII4, Spec: specs.MustLoad(specs.IssuerDialect)}
	conn, err := net.Dial("tcp", is.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := codec.WriteMessage(conn, req); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err := frame.ReadFrame(conn, frame.ASCII4, 0)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return body
}

func TestGarbageAnswers(t *testing.T) {
	cardA := card("9410")
	is := newIssuer(t, nil, nil)
	is.SetFault(Fault{GarbagePercent: 100})
	// On the wire: a well-framed body that does not decode.
	codec := &frame.Codec{Header: frame.ASCII4, Spec: specs.MustLoad(specs.IssuerDialect)}
	for range 20 {
		body := rawExchange(t, is, purchase(t, "0200", cardA, "100", ""))
		var ue *frame.UndecodableError
		if _, err := codec.Unpack(body); !errors.As(err, &ue) || ue.MTI != "" || len(body) < 8 || len(body) > 64 {
			t.Fatalf("garbage body %x: unpack error %v, want undecodable without a readable MTI", body, err)
		}
	}
	// A client sees its link break instead of an answer; network
	// management is still answered.
	c := dial(t, is)
	if rc := get(send(t, c, netMgmt(t, specs.NetMgmtSignOn)), specs.ResponseCode); rc != "00" {
		t.Fatalf("sign-on DE 39 %q", rc)
	}
	_, err := c.Send(purchase(t, "0200", cardA, "100", ""), connection.SendTimeout(5*time.Second))
	if err == nil || errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("err %v, want the connection closed on the undecodable answer", err)
	}
	// The requests were applied: only the answers were broken.
	if b := is.Balance(cardA); b != DefaultOpenToBuy-21*100 {
		t.Errorf("balance %d, want 21 purchases charged", b)
	}
}

func TestWrongSTANAnswers(t *testing.T) {
	cardA := card("9410")
	is := newIssuer(t, nil, nil)
	is.SetFault(Fault{WrongSTANPercent: 100})
	req := purchase(t, "0200", cardA, "100", "")
	req.Field(specs.STAN, "000123")
	resp, err := codecUnpack(rawExchange(t, is, req))
	if err != nil {
		t.Fatal(err)
	}
	if stan := get(resp, specs.STAN); stan == "000123" || len(stan) != 6 {
		t.Errorf("DE 11 %q, want a six-digit STAN other than 000123", stan)
	}
	for _, id := range []int{specs.PAN, specs.Amount, specs.RRN, specs.TerminalID} {
		if get(resp, id) != get(req, id) {
			t.Errorf("DE %d %q, want the echo %q", id, get(resp, id), get(req, id))
		}
	}
	if rc := get(resp, specs.ResponseCode); rc != "00" {
		t.Errorf("DE 39 %q", rc)
	}
	// A STAN-matching client never sees its answer.
	c := dial(t, is)
	_, err = c.Send(purchase(t, "0200", cardA, "100", ""), connection.SendTimeout(300*time.Millisecond))
	if !errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("err %v, want a send timeout", err)
	}
	if b := is.Balance(cardA); b != DefaultOpenToBuy-200 {
		t.Errorf("balance %d: both purchases are applied", b)
	}
	if rc := get(send(t, c, netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
		t.Errorf("echo DE 39 %q: network management keeps its STAN", rc)
	}
}

func codecUnpack(body []byte) (*iso8583.Message, error) {
	return (&frame.Codec{Header: frame.ASCII4, Spec: specs.MustLoad(specs.IssuerDialect)}).Unpack(body)
}

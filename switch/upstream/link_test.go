package upstream

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

func startIssuer(t *testing.T) *issuer.Issuer {
	t.Helper()
	is := issuertest.Start(t, issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}})
	return is
}

func newLink(t testing.TB, addr string, mutate func(*config.IssuerRoute), opts ...Option) *Link {
	t.Helper()
	c := config.Default()
	rc := c.Routes[0]
	rc.Addrs = []string{addr}
	rc.Timeout = 200 * time.Millisecond
	rc.ReconnectWait = 20 * time.Millisecond
	if mutate != nil {
		mutate(&rc)
	}
	l, err := New(rc, zap.NewNop(), NewMetrics(prometheus.NewRegistry()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l
}

// waitFor is testnet.Eventually with this package's five seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testnet.Eventually(t, 5*time.Second, what, cond)
}

func sale(t testing.TB, l *Link, amount string) *iso8583.Message {
	m := iso8583.NewMessage(l.Spec())
	m.MTI("0200")
	for id, v := range map[int]string{specs.PAN: "9410000000000005", specs.ProcessingCode: "000000", specs.Amount: amount,
		specs.TransmissionDateTime: "1125101500", specs.TerminalID: "TERM0001", specs.Currency: "410"} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestSignOnAndExchange(t *testing.T) {
	is := startIssuer(t)
	l := newLink(t, is.Addr(), nil)
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	if is.SignOns() != 1 {
		t.Fatalf("issuer saw %d sign-ons", is.SignOns())
	}
	resp, err := l.Exchange(context.Background(), sale(t, l, "000000001000"))
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("DE 39 %s", rc)
	}
}

func TestEchoOnIdleLink(t *testing.T) {
	is := startIssuer(t)
	newLink(t, is.Addr(), func(rc *config.IssuerRoute) { rc.EchoInterval = 50 * time.Millisecond })
	waitFor(t, "an echo", func() bool {
		for _, r := range is.Received() {
			if r.MTI == "0800" && r.Fields[specs.NetworkMgmtCode] == "301" {
				return true
			}
		}
		return false
	})
}

func TestTimeoutAndLateAnswer(t *testing.T) {
	is := startIssuer(t)
	var late atomic.Int32
	l := newLink(t, is.Addr(), nil, WithLateResponseHandler(func(route string, msg *iso8583.Message) {
		if rc, _ := msg.GetString(specs.ResponseCode); rc == "00" && route == "card-a" {
			late.Add(1)
		}
	}))
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	is.SetLatency(400 * time.Millisecond)
	_, err := l.Exchange(context.Background(), sale(t, l, "000000001000"))
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("err = %v, want ErrNoAnswer", err)
	}
	waitFor(t, "the late approval to reach the handler", func() bool { return late.Load() == 1 })
}

func TestUnavailableWhenIssuerDown(t *testing.T) {
	is := startIssuer(t)
	addr := is.Addr()
	_ = is.Close()
	l := newLink(t, addr, nil)
	if _, err := l.Exchange(context.Background(), sale(t, l, "000000001000")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestSTANPoolWrapsSkipsOwnedAndNeverZero(t *testing.T) {
	p := newSTANPool(999_997)
	p.hold("000001") // a pending give-back's STAN
	var got []string
	for range 4 {
		s, err := p.acquire()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	want := []string{"999998", "999999", "000002", "000003"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("STANs %v, want %v", got, want)
	}
	p.release("000001")
	p.release("999998")
	if p.inUse() != 3 {
		t.Fatalf("%d STANs owned, want 3", p.inUse())
	}
}

// TestSTANPartitionsNeverOverlap: two instances' pools of one route hand
// out disjoint STANs, each within its partition, also across the wrap.
func TestSTANPartitionsNeverOverlap(t *testing.T) {
	a, b := newSTANPool(999_990), newSTANPool(999_990)
	a.partition(0, 2)
	b.partition(1, 2)
	seen := map[string]string{}
	for i := 0; i < 40; i++ {
		for name, p := range map[string]*stanPool{"a": a, "b": b} {
			s, err := p.acquire()
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := seen[s]; dup {
				t.Fatalf("STAN %s handed out by %s and %s", s, other, name)
			}
			seen[s] = name
			p.release(s)
		}
	}
	tiny := newSTANPool(0)
	tiny.partition(0, maxSTAN) // one STAN in the partition: 999999
	if s, err := tiny.acquire(); err != nil || s != "999999" {
		t.Fatalf("only STAN of the partition: %s %v", s, err)
	}
	if _, err := tiny.acquire(); !errors.Is(err, ErrSTANsExhausted) {
		t.Fatalf("partition exhausted: err = %v, want ErrSTANsExhausted", err)
	}
}

// scriptedIssuer answers every request on the route with answer(req),
// signing on first; nil answers nothing.
func scriptedIssuer(t *testing.T, spec *iso8583.MessageSpec, answer func(req *iso8583.Message) *iso8583.Message) string {
	return isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		if isotest.SignOn(c, spec, req) {
			return
		}
		if resp := answer(req); resp != nil {
			_ = c.Reply(resp)
		}
	})
}

// answerTo is isotest.Answer, then change.
func answerTo(spec *iso8583.MessageSpec, req *iso8583.Message, mti, rc string, change func(*iso8583.Message)) *iso8583.Message {
	resp := isotest.Answer(spec, req, mti, rc)
	if change != nil {
		change(resp)
	}
	return resp
}

// TestAnswerMustMatchMTIClassAndReference: an answer with the request's
// STAN but another MTI class (an 0430 to a live 0200), or another DE 7 or
// DE 37, never completes the request: its outcome is unknown.
func TestAnswerMustMatchMTIClassAndReference(t *testing.T) {
	spec := specs.MustLoad(specs.IssuerDialect)
	cases := []struct {
		name   string
		answer func(req *iso8583.Message) *iso8583.Message
		ok     bool
	}{
		{"0210 with the request's references", func(r *iso8583.Message) *iso8583.Message { return answerTo(spec, r, "0210", "00", nil) }, true},
		{"0430 with the sale's STAN", func(r *iso8583.Message) *iso8583.Message { return answerTo(spec, r, "0430", "00", nil) }, false},
		{"0210 with another DE 7", func(r *iso8583.Message) *iso8583.Message {
			return answerTo(spec, r, "0210", "00", func(m *iso8583.Message) { _ = m.Field(specs.TransmissionDateTime, "0101000000") })
		}, false},
		{"0210 with another DE 37", func(r *iso8583.Message) *iso8583.Message {
			return answerTo(spec, r, "0210", "00", func(m *iso8583.Message) { _ = m.Field(specs.RRN, "000000000001") })
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := scriptedIssuer(t, spec, tc.answer)
			l := newLink(t, addr, func(rc *config.IssuerRoute) { rc.Header = "binary2"; rc.Timeout = 2 * time.Second })
			waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
			resp, err := l.Exchange(context.Background(), sale(t, l, "000000001000"))
			if tc.ok {
				if err != nil {
					t.Fatalf("matching answer refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNoAnswer) || resp != nil {
				t.Fatalf("err = %v, resp = %v: want an unknown outcome (ErrNoAnswer)", err, resp)
			}
		})
	}
}

// TestIssuerSignOffStopsSending: after the issuer's 0800 sign-off the
// link takes no requests (ErrUnavailable: nothing left) until it signs on.
func TestIssuerSignOffStopsSending(t *testing.T) {
	spec := specs.MustLoad(specs.IssuerDialect)
	var server atomic.Pointer[connection.Connection]
	addr := isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		server.Store(c)
		if isotest.SignOn(c, spec, req) {
			return
		}
		_ = c.Reply(answerTo(spec, req, "0210", "00", nil))
	})
	l := newLink(t, addr, func(rc *config.IssuerRoute) { rc.Header = "binary2"; rc.Timeout = 2 * time.Second })
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	netMgmt := func(code string) {
		m := iso8583.NewMessage(spec)
		m.MTI(specs.MTINetworkMgmt)
		_ = m.Field(specs.STAN, "424242")
		_ = m.Field(specs.TransmissionDateTime, "1201010101")
		_ = m.Field(specs.NetworkMgmtCode, code)
		if _, err := server.Load().Send(m); err != nil {
			t.Fatalf("issuer 0800 %s: %v", code, err)
		}
	}
	netMgmt(specs.NetMgmtSignOff)
	waitFor(t, "the link to go out of service", func() bool { return l.Up() == 0 })
	if _, err := l.Exchange(context.Background(), sale(t, l, "000000001000")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after the issuer's sign-off: err = %v, want ErrUnavailable", err)
	}
	netMgmt(specs.NetMgmtSignOn)
	waitFor(t, "the link to come back", func() bool { return l.Up() == 1 })
	if _, err := l.Exchange(context.Background(), sale(t, l, "000000001000")); err != nil {
		t.Fatalf("after the issuer signed on again: %v", err)
	}
}

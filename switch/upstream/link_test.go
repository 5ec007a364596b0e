package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

func startIssuer(t *testing.T) *issuer.Issuer {
	t.Helper()
	is, err := issuer.New(issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.Close() })
	return is
}

func newLink(t *testing.T, addr string, mutate func(*config.IssuerRoute), opts ...Option) *Link {
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sale(t *testing.T, l *Link, amount string) *iso8583.Message {
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

func TestNextSTANWrapsAndNeverZero(t *testing.T) {
	l := &Link{}
	l.stan.Store(999998)
	for _, want := range []string{"999999", "000001", "000002"} {
		if got := l.NextSTAN(); got != want {
			t.Fatalf("NextSTAN = %s, want %s", got, want)
		}
	}
}

func TestRRN(t *testing.T) {
	got := RRN(time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC), "000123")
	if got != "603209000123" || len(got) != 12 {
		t.Fatalf("RRN = %s", got)
	}
}

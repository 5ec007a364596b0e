package upstream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// fakeClock hands each wait to the test, which fires it.
type fakeClock struct{ waits chan fakeWait }

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{waits: make(chan fakeWait, 16)} }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeWait{d, ch}
	return ch
}

// next returns the schedule's next wait.
func (c *fakeClock) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the key-change schedule did not wait")
		return fakeWait{}
	}
}

// TestScheduledKeyChange: with key_exchange.every the link asks the
// issuer for a new key (0800/161 without DE 48) each time the clock says
// so; the issuer answers 00 and sends the key in its own 0800/161, which
// becomes pin.key's next version. A request the issuer does not answer 00
// is retried after KeyRequestRetry, the old key staying current; each
// request and change is counted.
func TestScheduledKeyChange(t *testing.T) {
	h, zmkClear := keyChangeHSM(t)
	spec := specs.MustLoad(specs.IssuerDialect)
	newKeys := [][]byte{[]byte("NEWZPK0123456789"), []byte("NEWZPK9876543210")}
	var requests, sent atomic.Int32
	var refuse atomic.Bool
	answers := make(chan string, 4)
	addr := isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		code, _ := req.GetString(specs.NetworkMgmtCode)
		if code != specs.NetMgmtKeyChange {
			isotest.SignOn(c, spec, req)
			return
		}
		if de48, _ := req.GetString(KeyExchangeField); de48 != "" {
			t.Errorf("the switch's key request carries DE 48 %q", de48)
		}
		requests.Add(1)
		if refuse.Load() {
			_ = c.Reply(isotest.Answer(spec, req, "0810", "91"))
			return
		}
		_ = c.Reply(isotest.Answer(spec, req, "0810", "00"))
		key := newKeys[sent.Add(1)-1]
		go func() {
			m := iso8583.NewMessage(spec)
			m.MTI(specs.MTINetworkMgmt)
			_ = m.Field(specs.TransmissionDateTime, "1201101500")
			_ = m.Field(specs.STAN, "90000"+string(rune('0'+sent.Load())))
			_ = m.Field(specs.NetworkMgmtCode, specs.NetMgmtKeyChange)
			_ = m.Field(KeyExchangeField, keyChangeField(t, zmkClear, key, false))
			resp, err := c.Send(m)
			if err != nil {
				answers <- "error: " + err.Error()
				return
			}
			rc, _ := resp.GetString(specs.ResponseCode)
			answers <- rc
		}()
	})
	clock := newFakeClock()
	l := newLink(t, addr, func(rc *config.IssuerRoute) {
		rc.Header = "binary2"
		rc.Timeout = 5 * time.Second
		rc.PIN = &config.PINKey{Key: "zpk-test", ZMK: "zmk-test"}
		rc.KeyExchange = &config.KeyExchange{Every: 24 * time.Hour}
	}, WithKeyExchange(func() hsm.HSM { return h }), WithClock(clock))
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })

	current := func() hsm.KeyInfo {
		t.Helper()
		return currentKey(t, h, "zpk-test")
	}
	keyChange := func(want []byte, version int) {
		t.Helper()
		select {
		case rc := <-answers:
			if rc != "00" {
				t.Fatalf("the switch answered the issuer's key change %s, want 00", rc)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the issuer's key change was not answered")
		}
		kcv, _ := paycrypto.KCV("tdes", want)
		if cur := current(); cur.Version != version || string(cur.KCV) != string(kcv) {
			t.Fatalf("zpk-test current: version %d KCV %X, want version %d KCV %X", cur.Version, cur.KCV, version, kcv)
		}
	}
	w := clock.next(t)
	if w.d != 24*time.Hour || requests.Load() != 0 {
		t.Fatalf("first wait %s with %d requests sent, want 24h and none before it", w.d, requests.Load())
	}
	w.fire <- time.Now()
	if w = clock.next(t); w.d != 24*time.Hour {
		t.Fatalf("after a key request answered 00 the schedule waits %s, want 24h", w.d)
	}
	keyChange(newKeys[0], 2)

	refuse.Store(true)
	w.fire <- time.Now()
	if w = clock.next(t); w.d != KeyRequestRetry {
		t.Fatalf("after a refused key request the schedule waits %s, want %s", w.d, KeyRequestRetry)
	}
	if cur := current(); cur.Version != 2 {
		t.Fatalf("a refused request changed the key to version %d", cur.Version)
	}
	refuse.Store(false)
	w.fire <- time.Now()
	if w = clock.next(t); w.d != 24*time.Hour {
		t.Fatalf("after the retry succeeded the schedule waits %s, want 24h", w.d)
	}
	keyChange(newKeys[1], 3)

	m := l.metrics.keyChanges
	for _, c := range []struct {
		what string
		got  float64
		want float64
	}{
		{"requests sent", counterValue(t, m.requests.WithLabelValues(l.Name(), KeyRequestSent)), 2},
		{"requests failed", counterValue(t, m.requests.WithLabelValues(l.Name(), KeyRequestFailed)), 1},
		{"keys imported", counterValue(t, m.changes.WithLabelValues(l.Name(), KeyChangeImported)), 2},
		{"keys refused", counterValue(t, m.changes.WithLabelValues(l.Name(), KeyChangeRefused)), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("Close with the schedule waiting: %v", err)
	}
}

// TestKeyScheduleOff: without key_exchange (the default), or without
// pin.zmk, no schedule runs.
func TestKeyScheduleOff(t *testing.T) {
	h, _ := keyChangeHSM(t)
	addr := isotest.Serve(t, specs.MustLoad(specs.IssuerDialect), func(c *connection.Connection, req *iso8583.Message) {
		isotest.SignOn(c, specs.MustLoad(specs.IssuerDialect), req)
	})
	for _, mutate := range []func(*config.IssuerRoute){
		func(rc *config.IssuerRoute) { rc.PIN = &config.PINKey{Key: "zpk-test", ZMK: "zmk-test"} },
		func(rc *config.IssuerRoute) {
			rc.PIN = &config.PINKey{Key: "zpk-test"}
			rc.KeyExchange = &config.KeyExchange{Every: time.Hour}
		},
	} {
		clock := newFakeClock()
		l := newLink(t, addr, func(rc *config.IssuerRoute) { rc.Header = "binary2"; mutate(rc) },
			WithKeyExchange(func() hsm.HSM { return h }), WithClock(clock))
		if l.sched != nil || len(clock.waits) != 0 {
			t.Errorf("a schedule runs for route config %+v", l.cfg.KeyExchange)
		}
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

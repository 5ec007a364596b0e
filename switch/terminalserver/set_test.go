package terminalserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/drain"
	"github.com/kbpay/switch/switch/pipeline"
)

func testListener(t *testing.T, addr, header string) *Listener {
	t.Helper()
	return newTestListener(t, func(c *config.Listener) { c.Addr, c.Header = addr, header },
		pipeline.HandlerFunc(func(context.Context, *pipeline.Txn) error { return nil }))
}

// newTestListener builds a listener of the terminal dialect, adjusted by
// set, that runs every request through h; closed at the test's end.
func newTestListener(t *testing.T, set func(*config.Listener), h pipeline.Handler) *Listener {
	t.Helper()
	byListener := []string{"listener"}
	withReason := []string{"listener", "reason"}
	m := &Metrics{
		Requests:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"listener", "mti", "route", "rc"}),
		Duration:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d"}, []string{"listener", "mti"}),
		InFlight:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "i"}, byListener),
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "c"}, byListener),
		Refused:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "f"}, withReason),
		InputErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e"}, withReason),
		Panics:      prometheus.NewCounter(prometheus.CounterOpts{Name: "p"}),
	}
	cfg := config.Listener{Name: "lane", Addr: "127.0.0.1:0", Spec: specs.TerminalDialect,
		MaxConnections: 10, MaxInFlight: 10, IdleTimeout: time.Minute}
	set(&cfg)
	l, err := New(cfg, Deps{Ctx: context.Background(), Handler: h, Txns: &drain.Tracker{}, Metrics: m, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.StopAccepting()
		l.CloseAll(ctx)
	})
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dials(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// TestSetStoppedStartsNothing: a listener a reload adds after the
// shutdown stopped the set never accepts.
func TestSetStoppedStartsNothing(t *testing.T) {
	var s Set
	l := testListener(t, "127.0.0.1:0", "binary2")
	if err := l.Bind(); err != nil {
		t.Fatal(err)
	}
	addr := l.Addr()
	s.StopAccepting()
	s.Serve(l)
	s.Replace([]*Listener{l})
	if dials(addr) {
		t.Fatal("a listener added after the shutdown began accepts connections")
	}
}

// TestReplacingListenerAdoptsSocket: a listener replacing one at the same
// fixed address takes over its socket; retiring the old one leaves it open.
func TestReplacingListenerAdoptsSocket(t *testing.T) {
	old := testListener(t, "127.0.0.1:0", "binary2")
	if err := old.Bind(); err != nil {
		t.Fatal(err)
	}
	addr := old.Addr()
	old.cfg.Addr = addr // as configured: a fixed port
	old.Serve()
	cur := testListener(t, addr, "ascii4")
	if err := cur.BindOrAdopt(old); err != nil {
		t.Fatalf("binding at the old listener's address: %v", err)
	}
	cur.Serve()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old.Retire(ctx)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the adopted socket closed with the retired listener: %v", err)
	}
	defer c.Close()
	waitFor(t, "the new listener to serve the connection", func() bool { return cur.Connections() == 1 })
	if n := old.Connections(); n != 0 {
		t.Fatalf("the retired listener took %d connections", n)
	}
}

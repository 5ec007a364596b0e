package terminalserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/tlstest"
	"github.com/kbpay/switch/switch/config"
)

func (l *Listener) registered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// registrationHold is a beforeRegister hook: it holds a connection's
// registration until forced holds (up to 10 s) and counts the
// registrations held and those that saw the wanted order, so that a test
// fails when it did not exercise the race it is about.
type registrationHold struct {
	forced        func() bool
	held, inOrder atomic.Int64
}

func (h *registrationHold) hold() {
	deadline := time.Now().Add(10 * time.Second)
	for !h.forced() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h.forced() {
		h.inOrder.Add(1)
	}
	h.held.Add(1)
}

// checkOrder fails the test unless all n registrations saw the wanted order.
func (h *registrationHold) checkOrder(t *testing.T, n int64, order string) {
	t.Helper()
	waitFor(t, "the listener to take every connection", func() bool { return h.held.Load() == n })
	if got := h.inOrder.Load(); got != n {
		t.Fatalf("%d of %d registrations saw %s: the race was not exercised", got, n, order)
	}
}

// TestConnectionClosedBeforeRegistered: a connection whose closed
// handler runs before serveConn enters it in conns (a peer that hangs
// up at once) must not stay registered.
func TestConnectionClosedBeforeRegistered(t *testing.T) {
	const peers = 3
	l := testListener(t, "127.0.0.1:0", "binary2")
	// Hold registration until the connection has closed and counted out.
	hold := &registrationHold{forced: func() bool { return l.Connections() == 0 }}
	l.beforeRegister = hold.hold
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	for range peers {
		c, err := net.DialTimeout("tcp", l.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	hold.checkOrder(t, peers, "the connection closed before its registration")
	waitFor(t, "the closed connections to leave the listener", func() bool {
		return l.Connections() == 0 && l.registered() == 0
	})
}

// TestTLSConnectionRegisteringLate: a TLS connection (served from its
// handshake's goroutine, which Retire and CloseAll do not wait for) that
// reaches registration once they have taken the listener's connections
// is closed, not left registered and open.
func TestTLSConnectionRegisteringLate(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	srv := ca.Server(t, "switch")
	for _, tt := range []struct {
		name  string
		close func(*Listener, context.Context)
	}{
		{"removed by a reload", (*Listener).Retire},
		{"shutdown", func(l *Listener, ctx context.Context) { l.StopAccepting(); l.CloseAll(ctx) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestListener(t, func(c *config.Listener) {
				c.TLS = &config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
			}, approveAll)
			closed := make(chan struct{})
			// Hold registration until the listener's close returned: it
			// took its copy of conns without this connection.
			hold := &registrationHold{forced: func() bool {
				select {
				case <-closed:
					return true
				default:
					return false
				}
			}}
			l.beforeRegister = hold.hold
			if err := l.Listen(); err != nil {
				t.Fatal(err)
			}
			tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			defer tc.Close()
			waitFor(t, "the connection to reach registration", func() bool { return l.Connections() == 1 })
			// The held connection keeps the close waiting until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			tt.close(l, ctx)
			close(closed)
			hold.checkOrder(t, 1, "the listener closed before the registration")
			waitFor(t, "the connection to close", func() bool { return l.Connections() == 0 && l.registered() == 0 })
			_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := tc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("the terminal reads %v, want EOF: the connection stayed open", err)
			}
		})
	}
}

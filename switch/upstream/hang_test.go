package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// TestLinkFailureAfterExpiredRequestsNeverHangs: requests sent with no
// time left (a terminal's deadline already spent) and then a link failure
// while a request waits. iso8583-connection v0.9.0's Send leaves such a
// request's entry in its pending map when its timer beats the write loop,
// and its failure handler then blocks for ever on that entry's channel
// while holding the pending lock: the waiting request, the connection's
// close and its pool's reconnect all hang. The request waiting must come
// back unanswered in bounded time and the endpoint must come back up.
func TestLinkFailureAfterExpiredRequestsNeverHangs(t *testing.T) {
	spec := specs.MustLoad(specs.IssuerDialect)
	var (
		server   atomic.Pointer[connection.Connection]
		answered atomic.Bool // sales answered only once the link is back
	)
	addr := isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		if isotest.SignOn(c, spec, req) {
			server.Store(c)
			return
		}
		if answered.Load() {
			_ = c.Reply(answerTo(spec, req, "0210", "00", nil))
		}
	})
	const timeout = time.Second
	l := newLink(t, addr, func(rc *config.IssuerRoute) { rc.Header = "binary2"; rc.Timeout = timeout; rc.Breaker.Failures = 1000 })
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 && server.Load() != nil })

	spent, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for range 20 {
		if _, err := l.Exchange(spent, sale(t, l, "000000001000")); !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("request with no time left: err = %v, want ErrNoAnswer", err)
		}
	}

	waiting := make(chan error, 1)
	go func() {
		_, err := l.Exchange(context.Background(), sale(t, l, "000000002000"))
		waiting <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the request leave before the link drops
	first := server.Load()
	_ = first.Close()

	select {
	case err := <-waiting:
		if !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("request waiting when the link failed: err = %v, want ErrNoAnswer", err)
		}
	case <-time.After(timeout + 10*time.Second):
		t.Fatal("request waiting when the link failed never came back: the link hung")
	}
	answered.Store(true)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := l.Exchange(context.Background(), sale(t, l, "000000003000"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint never came back after the link failure: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package pgtest

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/kbpay/switch/internal/testnet"
)

// Link is a TCP relay to a server that a test can cut and restore: the
// database becomes unreachable, as its clients see it, without stopping
// it. While cut, open connections are closed and new ones are closed as
// soon as they are accepted.
type Link struct {
	// Addr is the relay's loopback address.
	Addr string

	target string
	srv    *testnet.Server
	mu     sync.Mutex
	cut    bool
	ups    map[net.Conn]struct{} // connections to the server
}

// NewLink relays to s until t ends.
func (s *Server) NewLink(t testing.TB) *Link {
	t.Helper()
	l := &Link{target: s.Addr, ups: map[net.Conn]struct{}{}}
	l.srv = testnet.Serve(t, testnet.Listen(t), l.relay)
	l.Addr = l.srv.Addr()
	return l
}

// DSN is dsn (one of this server's) through the link.
func (l *Link) DSN(dsn string) string {
	return strings.Replace(dsn, "@"+l.target+"/", "@"+l.Addr+"/", 1)
}

// Cut closes every relayed connection and refuses new ones until Restore.
func (l *Link) Cut() {
	l.mu.Lock()
	l.cut = true
	for c := range l.ups {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.srv.CloseConns()
}

// Restore relays new connections again.
func (l *Link) Restore() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
}

// relay copies both ways between client connection c and a new connection
// to the server; testnet closes c when it returns.
func (l *Link) relay(c net.Conn) {
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		return
	}
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		_ = up.Close()
		return
	}
	l.ups[up] = struct{}{}
	l.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_, _ = dst.Close(), src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	l.mu.Lock()
	delete(l.ups, up)
	l.mu.Unlock()
}

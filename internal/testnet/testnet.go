// Package testnet is the tests' one place for loopback plumbing: listeners
// on 127.0.0.1:0, throw-away servers on them, addresses for components that
// only take an address, and polling with a deadline instead of sleeping.
//
// Prefer Listen and pass the listener itself: the port stays bound from the
// moment it is chosen, so nothing else can take it. FreeAddr is for what
// cannot take a listener (another process's configuration, a file that
// payswitch.Main reads, an address that must stay dead until the test
// starts something there); see its comment for the race that remains.
package testnet

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// PollInterval is how long Eventually and EventuallyOK wait between tries.
const PollInterval = 10 * time.Millisecond

// Listen listens on a free loopback TCP port; the listener is closed when
// the test ends (closing it earlier is fine).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testnet: listening on loopback: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// handedOut are the addresses FreeAddr returned in this test process.
var handedOut sync.Map

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing
// listens on at the moment and that FreeAddr has not returned before in
// this test process (the kernel may hand a port just closed to the next
// listen on :0, and two addresses of one configuration must differ).
//
// The race that remains: between this call and the bind by whoever the
// address is for, another process may take the port. Use it only where a
// listener cannot be passed; a caller that starts a server there either
// retries with a new address when the bind fails (pgtest, haproxytest) or
// accepts the rare failure of a test that reports the bind error.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testnet: finding a free loopback port: %v", err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		if _, seen := handedOut.LoadOrStore(addr, true); !seen {
			return addr
		}
	}
}

// FreePort is the port of a FreeAddr, with the same race.
func FreePort(t testing.TB) int {
	t.Helper()
	_, p, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("testnet: port %q: %v", p, err)
	}
	return port
}

// Eventually polls cond every PollInterval until it holds; when d passes
// first the test fails with "timed out after d waiting for what". Call it
// from the test's goroutine only (it may call t.Fatalf).
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(PollInterval)
	}
}

// EventuallyOK polls check every PollInterval until it returns nil; when d
// passes first the test fails with what and the last error, which should
// say what the state was.
func EventuallyOK(t testing.TB, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(PollInterval)
	}
}

// Server is a throw-away server started by Serve.
type Server struct {
	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Serve accepts connections on ln (from Listen, possibly wrapped, e.g. by
// tls.NewListener) and runs handle in a goroutine of its own for each. The
// server closes when the test ends, or earlier by Close. handle need not
// close its connection.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) *Server {
	t.Helper()
	s := &Server{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		s.mu.Lock()
		if s.closed || err != nil {
			// A temporary error (a wrapped listener's, say) is retried
			// while the server is open.
			stop := s.closed
			s.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			if stop {
				return
			}
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer s.forget(c)
			s.handle(c)
		}()
	}
}

func (s *Server) forget(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// CloseConns closes every open connection; the server keeps accepting.
func (s *Server) CloseConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Close stops accepting, closes every open connection and waits for the
// handlers to return. It may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.ln.Close()
	s.CloseConns()
	s.wg.Wait()
}

package haproxytest_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/haproxytest"
	"github.com/kbpay/switch/internal/testnet"
)

const statusTimeout = 30 * time.Second

// namedServer is a tiny TCP backend: it greets every connection with its
// name and echoes what it reads. kill closes the listener and every open
// connection, as a crashed process would.
type namedServer struct{ *testnet.Server }

func startNamed(t *testing.T, name string) *namedServer {
	t.Helper()
	return &namedServer{testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		if _, err := c.Write([]byte(name + "\n")); err != nil {
			return
		}
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})}
}

func (s *namedServer) kill() { s.Close() }

func (s *namedServer) addr() string { return s.Addr() }

// via connects through the proxy, reads which backend answered and checks
// that bytes round-trip through it.
func via(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("connecting to the proxy: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the backend's greeting: %v", err)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("echo through the proxy = %q, %v", echo, err)
	}
	return strings.TrimSpace(name)
}

func spread(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		got[via(t, addr)]++
	}
	return got
}

// TestRoundRobinAndFailover: connections alternate over both backends;
// after one dies, health checks mark it down and every new connection
// reaches the survivor.
func TestRoundRobinAndFailover(t *testing.T) {
	t.Parallel()
	a, b := startNamed(t, "a"), startNamed(t, "b")
	p := haproxytest.Start(t, []haproxytest.Backend{{Name: "a", Addr: a.addr()}, {Name: "b", Addr: b.addr()}}, haproxytest.Options{})
	p.WaitStatus(t, "a", "UP", statusTimeout)
	p.WaitStatus(t, "b", "UP", statusTimeout)

	got := spread(t, p.Addr, 20)
	if got["a"] < 5 || got["b"] < 5 || got["a"]+got["b"] != 20 {
		t.Fatalf("20 connections spread %v, want both backends used (round robin)", got)
	}

	b.kill()
	p.WaitStatus(t, "b", "DOWN", statusTimeout)
	if got := spread(t, p.Addr, 10); got["a"] != 10 {
		t.Fatalf("after b died, 10 connections went %v, want all to a", got)
	}
}

// TestHTTPCheckFollowsReadiness: with an HTTP check on a separate port
// (switchd's /readyz on its admin port), a backend whose readiness fails
// is taken out of rotation and comes back when it passes again.
func TestHTTPCheckFollowsReadiness(t *testing.T) {
	t.Parallel()
	a, b := startNamed(t, "a"), startNamed(t, "b")
	var bReady atomic.Bool
	bReady.Store(true)
	ready := func(ok func() bool) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" || !ok() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	aAdmin, bAdmin := ready(func() bool { return true }), ready(bReady.Load)
	p := haproxytest.Start(t, []haproxytest.Backend{
		{Name: "a", Addr: a.addr(), CheckPort: port(t, aAdmin.Listener.Addr())},
		{Name: "b", Addr: b.addr(), CheckPort: port(t, bAdmin.Listener.Addr())},
	}, haproxytest.Options{HTTPCheck: "/readyz"})
	p.WaitStatus(t, "a", "UP", statusTimeout)
	p.WaitStatus(t, "b", "UP", statusTimeout)

	bReady.Store(false) // b drains: still accepts TCP, but is not ready
	p.WaitStatus(t, "b", "DOWN", statusTimeout)
	if got := spread(t, p.Addr, 6); got["a"] != 6 {
		t.Fatalf("with b not ready, connections went %v, want all to a", got)
	}
	bReady.Store(true)
	p.WaitStatus(t, "b", "UP", statusTimeout)
	if got := spread(t, p.Addr, 10); got["b"] == 0 {
		t.Fatalf("b ready again but got no connection: %v", got)
	}
}

// TestStopClosesTheFrontend: after Stop nothing listens on Addr, and the
// generated configuration passes haproxy -c.
func TestStopClosesTheFrontend(t *testing.T) {
	t.Parallel()
	a := startNamed(t, "a")
	p := haproxytest.Start(t, []haproxytest.Backend{{Addr: a.addr()}}, haproxytest.Options{})
	if err := haproxytest.Check(t, filepath.Join(p.Dir, "haproxy.cfg")); err != nil {
		t.Fatal(err)
	}
	p.WaitStatus(t, "s1", "UP", statusTimeout)
	if got := via(t, p.Addr); got != "a" {
		t.Fatalf("answered by %q, want a", got)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second); err == nil {
		_ = c.Close()
		t.Fatal("frontend still accepts after Stop")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestCheckRejectsABrokenConfig: Check reports what haproxy -c says.
func TestCheckRejectsABrokenConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "broken.cfg")
	if err := os.WriteFile(path, []byte("frontend f\n    bind 127.0.0.1:1\n    no_such_keyword here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := haproxytest.Check(t, path); err == nil {
		t.Fatal("haproxy -c accepted a broken configuration")
	}
}

func port(t *testing.T, a net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

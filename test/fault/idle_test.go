package fault

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/terminal"
)

// TestTenThousandIdleConnections opens 10,000 connections to a switchd
// process and leaves them idle; a well-behaved terminal must still be
// served at once, and switchd must count them all. (The switch runs as its
// own process: the two ends of 10,000 loopback connections do not fit one
// process's 20,000 file descriptors.)
func TestTenThousandIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	e := startEnv(t, 1_000_000_000)
	const n = 10_000
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	d := net.Dialer{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		c, err := d.Dial("tcp", e.sw.termAddr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	term := e.sw.terminal(t)
	card := "941000000000000"
	card += string(pan.CheckDigit(card))
	for i := 0; i < 20; i++ {
		res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: card, Amount: 100})
		if err != nil || res.ResponseCode != "00" {
			t.Fatalf("purchase %d with %d idle connections open: %v %v", i, n, res.ResponseCode, err)
		}
	}
	resp, err := http.Get("http://" + e.sw.adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`payswitch_connections\{listener="terminal"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("payswitch_connections missing from /metrics")
	}
	if got, _ := strconv.Atoi(string(m[1])); got < n {
		t.Fatalf("switch counts %d connections, %d are open", got, n+1)
	}
	t.Logf("%d idle connections open, %s counted by switchd, 20 purchases served", n, m[1])
}

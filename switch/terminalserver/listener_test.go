package terminalserver

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func (l *Listener) registered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// TestConnectionClosedBeforeRegistered: a connection whose closed
// handler runs before serveConn enters it in conns (a peer that hangs
// up at once) must not stay registered.
func TestConnectionClosedBeforeRegistered(t *testing.T) {
	const peers = 3
	l := testListener(t, "127.0.0.1:0", "binary2")
	var held atomic.Int64
	// Hold registration until the connection has closed and counted out.
	l.beforeRegister = func() {
		deadline := time.Now().Add(10 * time.Second)
		for l.Connections() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		held.Add(1)
	}
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
	waitFor(t, "the listener to take every connection", func() bool { return held.Load() == peers })
	waitFor(t, "the closed connections to leave the listener", func() bool {
		return l.Connections() == 0 && l.registered() == 0
	})
}

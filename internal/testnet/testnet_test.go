package testnet

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

func TestFreeAddrIsFreeAndNeverRepeated(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listening on FreeAddr %s: %v", a, err)
		}
		_ = ln.Close()
	}
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

func TestServeEchoesAndCloseEndsConnections(t *testing.T) {
	s := Serve(t, Listen(t), func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			_, _ = c.Write([]byte(line))
		}
		_, _ = c.Read(make([]byte, 1)) // hold until closed
	})
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "sale")
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "sale\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	s.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
	s.Close() // twice is fine
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, "the third try", func() bool { n++; return n == 3 })
	m := 0
	EventuallyOK(t, 5*time.Second, "the third try", func() error {
		if m++; m < 3 {
			return errors.New("not yet")
		}
		return nil
	})
}

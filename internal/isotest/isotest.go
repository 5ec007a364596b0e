// Package isotest starts throw-away ISO 8583 servers on loopback for the
// simulators' tests: an accept loop wrapping each socket with
// iso8583-connection, a handler per inbound message, cleanup at test end.
package isotest

import (
	"net"
	"sync"
	"testing"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/switch/frame"
)

// Handler answers (or not) one inbound message, typically with c.Reply.
type Handler func(c *connection.Connection, msg *iso8583.Message)

// Serve listens on 127.0.0.1:0 with 2-byte binary length headers in spec,
// calls handle for every message on every connection, and closes the
// listener and the connections when the test ends. It returns the address.
func Serve(t testing.TB, spec *iso8583.MessageSpec, handle Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	codec := &frame.Codec{Header: frame.Binary2, Spec: spec}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []*connection.Connection
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			c, err := connection.NewFrom(nc, spec, nil, nil,
				connection.SetMessageReader(codec),
				connection.SetMessageWriter(codec),
				connection.InboundMessageHandler(handle),
			)
			if err != nil {
				t.Errorf("test server: %v", err)
				_ = nc.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

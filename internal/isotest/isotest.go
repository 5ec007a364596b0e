// Package isotest starts throw-away ISO 8583 servers on loopback for the
// simulators' tests: an accept loop wrapping each socket with
// iso8583-connection, a handler per inbound message, cleanup at test end.
package isotest

import (
	"crypto/tls"
	"sync"
	"testing"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/iso/frame"
)

// Handler answers (or not) one inbound message, typically with c.Reply.
type Handler func(c *connection.Connection, msg *iso8583.Message)

// Serve listens on 127.0.0.1:0 with 2-byte binary length headers in spec,
// calls handle for every message on every connection, and closes the
// listener and the connections when the test ends. It returns the address.
func Serve(t testing.TB, spec *iso8583.MessageSpec, handle Handler) string {
	t.Helper()
	return ServeTLS(t, spec, nil, handle)
}

// ServeTLS is Serve over TLS with cfg (nil: plain TCP).
func ServeTLS(t testing.TB, spec *iso8583.MessageSpec, cfg *tls.Config, handle Handler) string {
	t.Helper()
	ln := testnet.Listen(t)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
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

// Answer builds mti answering req with DE 39 rc, echoing DE 11, DE 7,
// DE 37, DE 70 and DE 90 where req has them, like an approval host.
func Answer(spec *iso8583.MessageSpec, req *iso8583.Message, mti, rc string) *iso8583.Message {
	resp := iso8583.NewMessage(spec)
	resp.MTI(mti)
	for _, id := range []int{7, 11, 37, 70, 90} {
		if v, _ := req.GetString(id); v != "" {
			_ = resp.Field(id, v)
		}
	}
	_ = resp.Field(39, rc)
	return resp
}

// SignOn answers a network management request (sign-on, echo, sign-off)
// with 00 and reports whether req was one.
func SignOn(c *connection.Connection, spec *iso8583.MessageSpec, req *iso8583.Message) bool {
	if mti, _ := req.GetMTI(); mti != "0800" {
		return false
	}
	_ = c.Reply(Answer(spec, req, "0810", "00"))
	return true
}

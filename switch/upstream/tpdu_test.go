package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/iso/frame/netheader"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// tpduFrame is one frame an issuer read: its TPDU and message.
type tpduFrame struct {
	tpdu isotest.TPDU
	msg  *iso8583.Message
}

// TestIssuerLinkTPDUPerMessage: on a binary2+tpdu route the issuer's own
// requests, read together, are each answered with their own TPDU
// swapped, and what the switch sends first still carries its initiating
// TPDU, not one derived from the last frame the link read.
func TestIssuerLinkTPDUPerMessage(t *testing.T) {
	ln := testnet.Listen(t)
	spec := specs.MustLoad(config.Default().Routes[0].Spec)
	frames := make(chan tpduFrame, 16)
	conns := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { _ = nc.Close() })
		conns <- nc
		r := bufio.NewReader(nc)
		defer close(frames)
		for {
			tpdu, msg, err := isotest.ReadTPDUFrame(r, spec)
			if err != nil {
				return // the connection ended
			}
			// Approve what the switch asks, with the TPDU it came with
			// swapped, as an issuer host does.
			if mti, _ := msg.GetMTI(); specs.IsRequest(mti) {
				rmti, _ := specs.ResponseMTI(mti)
				out, err := isotest.Answer(spec, msg, rmti, "00").Pack()
				if err != nil {
					return
				}
				b, _ := frame.AppendFrame(frame.TPDU{Length: frame.Binary2, Initiate: isotest.Swapped(tpdu)}, nil, out)
				if _, err := nc.Write(b); err != nil {
					return
				}
			}
			frames <- tpduFrame{tpdu, msg}
		}
	}()
	l := newLink(t, ln.Addr().String(), func(rc *config.IssuerRoute) {
		rc.Header = "binary2+tpdu"
		rc.Timeout = 10 * time.Second
	})
	var nc net.Conn
	select {
	case nc = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not connect")
	}
	next := func(what string) tpduFrame {
		t.Helper()
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("connection ended waiting for %s", what)
			}
			return f
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
		return tpduFrame{}
	}
	if signOn := next("the sign-on"); signOn.tpdu != netheader.DefaultTPDU {
		t.Fatalf("sign-on TPDU % x, want % x", signOn.tpdu, netheader.DefaultTPDU)
	}
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })

	// The issuer's own echoes, from two of its NIIs, in one write.
	sent := map[string]isotest.TPDU{"000301": {0x60, 0x00, 0x11, 0x00, 0x22}, "000302": {0x60, 0x00, 0x33, 0x00, 0x44}}
	var both bytes.Buffer
	for stan, tpdu := range sent {
		echo := iso8583.NewMessage(spec)
		echo.MTI(specs.MTINetworkMgmt)
		for id, v := range map[int]string{specs.TransmissionDateTime: "1201083000", specs.STAN: stan, specs.NetworkMgmtCode: specs.NetMgmtEcho} {
			if err := echo.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		isotest.WriteTPDUFrame(t, &both, tpdu, echo)
	}
	if _, err := nc.Write(both.Bytes()); err != nil {
		t.Fatal(err)
	}
	for range sent {
		f := next("the answers to the issuer's echoes")
		stan, _ := f.msg.GetString(specs.STAN)
		want := isotest.Swapped(sent[fmt.Sprintf("%06s", stan)])
		if f.tpdu != want {
			t.Errorf("answer to the issuer's STAN %s: TPDU % x, want % x", stan, f.tpdu, want)
		}
	}

	if _, err := l.Exchange(context.Background(), sale(t, l, "000000001000")); err != nil {
		t.Fatal(err)
	}
	if req := next("the sale"); req.tpdu != netheader.DefaultTPDU {
		t.Errorf("sale sent after the issuer's requests: TPDU % x, want % x", req.tpdu, netheader.DefaultTPDU)
	}
}

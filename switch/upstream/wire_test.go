package upstream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// netMgmtCounter is a scripted issuer that approves every sale and
// counts the 0800s it gets by DE 70 code.
func netMgmtCounter(t *testing.T) (addr string, signOns, signOffs, echoes *atomic.Int32) {
	spec := specs.MustLoad(specs.IssuerDialect)
	signOns, signOffs, echoes = new(atomic.Int32), new(atomic.Int32), new(atomic.Int32)
	addr = isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		if mti, _ := req.GetMTI(); mti == specs.MTINetworkMgmt {
			switch code, _ := req.GetString(specs.NetworkMgmtCode); code {
			case specs.NetMgmtSignOn:
				signOns.Add(1)
			case specs.NetMgmtSignOff:
				signOffs.Add(1)
			case specs.NetMgmtEcho:
				echoes.Add(1)
			}
			isotest.SignOn(c, spec, req)
			return
		}
		_ = c.Reply(answerTo(spec, req, "0210", "00", nil))
	})
	return addr, signOns, signOffs, echoes
}

// TestCloseSignsOff: closing a link sends the issuer its 0800 sign-off
// (iso8583-connection marks a connection closing before its close hook
// runs, so a sign-off sent through its Send never left).
func TestCloseSignsOff(t *testing.T) {
	addr, _, signOffs, _ := netMgmtCounter(t)
	l := newLink(t, addr, func(rc *config.IssuerRoute) { rc.Header = "binary2"; rc.Timeout = 2 * time.Second })
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the issuer to get the sign-off", func() bool { return signOffs.Load() == 1 })
}

// TestBusyLinkIsNotTakenForSilent: answers handed straight to their
// requests are traffic: a link answering steadily is neither dropped as
// silent nor echoed while busy.
func TestBusyLinkIsNotTakenForSilent(t *testing.T) {
	addr, signOns, _, echoes := netMgmtCounter(t)
	const echo = 100 * time.Millisecond // silent after 2 x echo + timeout = 400ms
	l := newLink(t, addr, func(rc *config.IssuerRoute) {
		rc.Header, rc.Timeout, rc.EchoInterval = "binary2", 200*time.Millisecond, echo
	})
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	echoesBefore := echoes.Load()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		if _, err := l.Exchange(context.Background(), sale(t, l, "000000001000")); err != nil {
			t.Fatalf("busy link: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := signOns.Load(); n != 1 {
		t.Fatalf("%d sign-ons: the busy link was dropped and reconnected", n)
	}
	if n := echoes.Load() - echoesBefore; n > 1 {
		t.Fatalf("%d echoes on a link busy with requests", n)
	}
}

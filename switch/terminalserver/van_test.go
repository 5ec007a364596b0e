package terminalserver

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
)

// approveAll approves every request (network management included).
var approveAll = pipeline.HandlerFunc(func(_ context.Context, txn *pipeline.Txn) error {
	txn.Code = codes.Approved
	return nil
})

// vanConfig makes a listener a VAN listener.
func vanConfig(c *config.Listener) {
	c.SignOnRequired, c.MaxConnections, c.RatePerTerminal = true, 100, 1000
}

// vanListener is a VAN listener whose pipeline approves everything,
// serving.
func vanListener(t *testing.T) *Listener {
	t.Helper()
	l := newTestListener(t, vanConfig, approveAll)
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	return l
}

// vanPeer is a VAN link to l, signed on; it answers nothing afterwards.
type vanPeer struct {
	nc    net.Conn
	r     *bufio.Reader
	codec *frame.Codec
}

func signedOnVAN(t *testing.T, l *Listener) *vanPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", l.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	p := &vanPeer{nc: nc, r: bufio.NewReader(nc), codec: &frame.Codec{Spec: l.spec}}
	m := iso8583.NewMessage(l.spec)
	m.MTI(specs.MTINetworkMgmt)
	for id, v := range map[int]string{specs.TransmissionDateTime: "1201083000", specs.STAN: "000001", specs.NetworkMgmtCode: specs.NetMgmtSignOn} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := p.codec.Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	resp := p.read(t)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != string(codes.Approved) {
		mti, _ := resp.GetMTI()
		t.Fatalf("sign-on answered %s %q, want 00", mti, rc)
	}
	return p
}

// read reads the next message from the switch.
func (p *vanPeer) read(t *testing.T) *iso8583.Message {
	t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := p.codec.ReadMessage(p.r)
	if err != nil {
		t.Fatalf("VAN reading: %v", err)
	}
	return m
}

// TestRemovalSignsOffSilentVANWithinDrainTimeout: a VAN that never
// answers the switch's sign-off does not hold up the listener's removal
// past drain_timeout; it gets the 0800 DE 70 002 and is closed.
func TestRemovalSignsOffSilentVANWithinDrainTimeout(t *testing.T) {
	const drainTimeout = 3 * time.Second
	l := vanListener(t)
	p := signedOnVAN(t, l)
	waitFor(t, "the sign-on", func() bool { return l.signedOn.Load() == 1 })
	var s Set
	start := time.Now()
	s.Retire(l, drainTimeout)
	signOff := p.read(t)
	if code, _ := signOff.GetString(specs.NetworkMgmtCode); code != specs.NetMgmtSignOff {
		t.Fatalf("VAN got DE 70 %q, want the switch's sign-off %s", code, specs.NetMgmtSignOff)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.WaitRetired(ctx)
	if took := time.Since(start); took > drainTimeout+time.Second {
		t.Fatalf("removal took %v with drain_timeout %v", took, drainTimeout)
	}
	waitFor(t, "the VAN's connection to close", func() bool { return l.Connections() == 0 })
}

// TestSignOffWithNoTimeLeftNeverStrandsAConnection: sign-offs given
// almost no time (a drain nearly spent) must not leave a connection the
// VAN then closes unable to close: every one leaves the listener.
func TestSignOffWithNoTimeLeftNeverStrandsAConnection(t *testing.T) {
	const links = 40
	l := vanListener(t)
	peers := make([]*vanPeer, links)
	for i := range peers {
		peers[i] = signedOnVAN(t, l)
	}
	waitFor(t, "the sign-ons", func() bool { return l.signedOn.Load() == links })
	// The time left ranges over the scale of a goroutine hand-off, where
	// a sign-off's wait can end before its write is under way.
	for wait := 10 * time.Microsecond; wait < 5*time.Millisecond; wait *= 2 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		l.SignOffLinks(ctx)
		cancel()
	}
	for _, p := range peers {
		_ = p.nc.Close() // the VAN hangs up
	}
	waitFor(t, "every connection to leave the listener", func() bool { return l.Connections() == 0 })
}

// TestAnsweredSignOffIsMatchedByItsSTAN: the VAN's 0810 to the switch's
// sign-off ends the wait at once.
func TestAnsweredSignOffIsMatchedByItsSTAN(t *testing.T) {
	l := vanListener(t)
	p := signedOnVAN(t, l)
	waitFor(t, "the sign-on", func() bool { return l.signedOn.Load() == 1 })
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		m, err := p.codec.ReadMessage(p.r)
		if err != nil {
			return
		}
		resp := iso8583.NewMessage(l.spec)
		resp.MTI(specs.MTINetworkMgmtRsp)
		for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.NetworkMgmtCode} {
			_ = fields.Copy(resp, m, id)
		}
		_ = resp.Field(specs.ResponseCode, string(codes.Approved))
		if b, err := p.codec.Pack(resp); err == nil {
			_, _ = p.nc.Write(b)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	l.SignOffLinks(ctx)
	if took := time.Since(start); took >= linkSignOffTimeout {
		t.Fatalf("sign-off waited %v: its 0810 was not matched", took)
	}
	<-answered
}

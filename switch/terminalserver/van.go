package terminalserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"golang.org/x/time/rate"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
)

// Reasons a VAN link's request is refused before the pipeline (DE 39 91).
const (
	ReasonNotSignedOn  = "link not signed on (0800 DE 70 001 first)"
	ReasonLinkOverRate = "link over its rate limit"
)

// vanLink is the state of one connection on a listener: its requests in
// flight, whether it signed on, and its request rate.
type vanLink struct {
	inFlight atomic.Int64
	signedOn atomic.Bool
	limiter  *rate.Limiter // nil: no cap
	// closed is set (under the listener's mu) once the connection's
	// closed handler ran: a connection closed before it is entered in
	// the listener's conns is never entered.
	closed bool
	// out writes the connection's frames: the switch's own sign-off goes
	// out through it, as the answers do.
	out *frame.Writer
	// signOff is the switch's sign-off waiting for its 0810 (nil: none).
	signOff atomic.Pointer[pendingSignOff]
}

// pendingSignOff is the switch's 0800 sign-off on a link waiting for the
// 0810 with its STAN.
type pendingSignOff struct {
	stan   string // normalized (no leading zeros)
	answer chan *iso8583.Message
}

func newVANLink(cfg config.Listener, out *frame.Writer) *vanLink {
	v := &vanLink{out: out}
	if cfg.RatePerLink > 0 {
		v.limiter = rate.NewLimiter(rate.Limit(cfg.RatePerLink), 2*cfg.RatePerLink)
	}
	return v
}

// waitIdle waits (up to ctx) until the link has no request in flight.
func (v *vanLink) waitIdle(ctx context.Context) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for v.inFlight.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// admit reports whether the link may send t now; when not, t carries the
// decline (91 and the reason) and the refusal is counted. Network
// management always passes: it is how a link signs on.
func (l *Listener) admit(v *vanLink, t *pipeline.Txn) bool {
	if v.limiter != nil && !v.limiter.Allow() {
		l.m.Refused.WithLabelValues(l.cfg.Name, "link_rate").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, ReasonLinkOverRate
		return false
	}
	if l.cfg.SignOnRequired && t.MTI != specs.MTINetworkMgmt && !v.signedOn.Load() {
		l.m.Refused.WithLabelValues(l.cfg.Name, "not_signed_on").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, ReasonNotSignedOn
		return false
	}
	return true
}

// observe follows the link's sign-on and sign-off once the switch
// answered them 00.
func (l *Listener) observe(v *vanLink, t *pipeline.Txn) {
	if t.MTI != specs.MTINetworkMgmt || t.Code != codes.Approved {
		return
	}
	var was bool
	switch code, _ := t.Request.GetString(specs.NetworkMgmtCode); code {
	case specs.NetMgmtSignOn:
		if was = v.signedOn.Swap(true); !was {
			l.signedOn.Add(1)
		}
	case specs.NetMgmtSignOff:
		if was = v.signedOn.Swap(false); was {
			l.signedOn.Add(-1)
		}
	}
}

// linkClosed forgets a closed connection's sign-on.
func (l *Listener) linkClosed(v *vanLink) {
	if v.signedOn.Swap(false) {
		l.signedOn.Add(-1)
	}
}

// linkSignOffTimeout bounds waiting for a VAN's 0810 to the switch's
// sign-off: a VAN that does not answer does not hold up the drain.
const linkSignOffTimeout = 2 * time.Second

// SignOffLinks sends every signed-on connection of the listener an 0800
// with DE 70 002 (the switch signs off) and waits up to
// linkSignOffTimeout (or ctx) for the answers. Run at shutdown once the
// in-flight transactions are answered, before the connections close.
func (l *Listener) SignOffLinks(ctx context.Context) {
	l.mu.Lock()
	var links []*vanLink
	for _, v := range l.conns {
		if v.signedOn.Load() {
			links = append(links, v)
		}
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, v := range links {
		wg.Go(func() { l.signOff(ctx, v) })
	}
	wg.Wait()
}

// signOff sends the link the switch's 0800 sign-off and waits for its
// 0810 up to linkSignOffTimeout or ctx, whichever ends first. The 0800
// goes out on the connection's frame writer and the 0810 is taken by
// the listener's inbound handler (takeSignOffAnswer), matched by STAN:
// iso8583-connection's Send is not used, since in v0.9.0 it can leave
// an entry that blocks the connection's failure handler for ever (see
// switch/upstream/wire.go). Whatever the VAN does (answers, stays
// silent, stops reading), signOff returns within the bound; the caller
// then closes the connection, which also ends a write still blocked.
func (l *Listener) signOff(ctx context.Context, v *vanLink) {
	timeout := linkSignOffTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return
	}
	m := iso8583.NewMessage(l.spec)
	m.MTI(specs.MTINetworkMgmt)
	stan := fmt.Sprintf("%06d", l.signOffSTAN.Add(1)%1000000)
	for id, val := range map[int]string{specs.TransmissionDateTime: time.Now().UTC().Format("0102150405"), specs.STAN: stan, specs.NetworkMgmtCode: specs.NetMgmtSignOff} {
		if err := m.Field(id, val); err != nil {
			l.log.Warn("building link sign-off", zap.Error(err))
			return
		}
	}
	p := &pendingSignOff{stan: strings.TrimLeft(stan, "0"), answer: make(chan *iso8583.Message, 1)}
	if !v.signOff.CompareAndSwap(nil, p) {
		return // a sign-off is already waiting on this link (shutdown during a removal)
	}
	defer v.signOff.CompareAndSwap(p, nil)
	sent := make(chan error, 1)
	// A write to a VAN that stopped reading blocks up to the write
	// timeout: it must not hold the drain, so it is waited on, bounded.
	go func() { sent <- v.out.Send(m) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case err := <-sent:
			if err != nil {
				l.log.Warn("link sign-off not sent", zap.Error(err))
				return
			}
			sent = nil // written: wait for the answer
		case resp := <-p.answer:
			rc, _ := resp.GetString(specs.ResponseCode)
			l.log.Info("link signed off", zap.String("rc", rc))
			return
		case <-t.C:
			l.log.Warn("link sign-off not answered", zap.Duration("waited", timeout))
			return
		case <-ctx.Done():
			l.log.Warn("link sign-off not answered", zap.Error(ctx.Err()))
			return
		}
	}
}

// takeSignOffAnswer hands msg to the link's sign-off when it is the 0810
// with its STAN, and reports whether it did.
func (v *vanLink) takeSignOffAnswer(msg *iso8583.Message) bool {
	p := v.signOff.Load()
	if p == nil {
		return false
	}
	if mti, _ := msg.GetMTI(); mti != specs.MTINetworkMgmtRsp {
		return false
	}
	if stan, _ := msg.GetString(specs.STAN); strings.TrimLeft(stan, "0") != p.stan || !v.signOff.CompareAndSwap(p, nil) {
		return false
	}
	p.answer <- msg
	return true
}

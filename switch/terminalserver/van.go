package terminalserver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"golang.org/x/time/rate"

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
}

func newVANLink(cfg config.Listener) *vanLink {
	v := &vanLink{}
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

// netMgmtID matches the switch's own 0800 to its 0810 by STAN. Only
// answers are matched (moov looks up answer-class messages alone), so a
// VAN's own 0800 requests still reach the inbound handler.
func netMgmtID(m *iso8583.Message) (string, bool) {
	mti, _ := m.GetMTI()
	if mti != specs.MTINetworkMgmt && mti != specs.MTINetworkMgmtRsp {
		return "", false
	}
	stan, _ := m.GetString(specs.STAN)
	return "netmgmt-" + stan, true
}

// SignOffLinks sends every signed-on connection of the listener an 0800
// with DE 70 002 (the switch signs off) and waits up to
// linkSignOffTimeout (or ctx) for the answers. Run at shutdown once the
// in-flight transactions are answered, before the connections close.
func (l *Listener) SignOffLinks(ctx context.Context) {
	l.mu.Lock()
	var links []*connection.Connection
	for c, v := range l.conns {
		if v.signedOn.Load() {
			links = append(links, c)
		}
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range links {
		wg.Go(func() { l.signOff(ctx, c) })
	}
	wg.Wait()
}

func (l *Listener) signOff(ctx context.Context, c *connection.Connection) {
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
	for id, v := range map[int]string{specs.TransmissionDateTime: time.Now().UTC().Format("0102150405"), specs.STAN: stan, specs.NetworkMgmtCode: specs.NetMgmtSignOff} {
		if err := m.Field(id, v); err != nil {
			l.log.Warn("building link sign-off", zap.Error(err))
			return
		}
	}
	resp, err := c.Send(m, connection.SendTimeout(timeout))
	if err != nil {
		l.log.Warn("link sign-off not answered", zap.Error(err))
		return
	}
	rc, _ := resp.GetString(specs.ResponseCode)
	l.log.Info("link signed off", zap.String("rc", rc))
}

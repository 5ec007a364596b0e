package payswitch

import (
	"sync/atomic"

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
}

func newVANLink(cfg config.Listener) *vanLink {
	v := &vanLink{}
	if cfg.RatePerLink > 0 {
		v.limiter = rate.NewLimiter(rate.Limit(cfg.RatePerLink), 2*cfg.RatePerLink)
	}
	return v
}

// admit reports whether the link may send t now; when not, t carries the
// decline (91 and the reason) and the refusal is counted. Network
// management always passes: it is how a link signs on.
func (l *listener) admit(v *vanLink, t *pipeline.Txn) bool {
	if v.limiter != nil && !v.limiter.Allow() {
		l.sw.metrics.refused.WithLabelValues(l.cfg.Name, "link_rate").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, ReasonLinkOverRate
		return false
	}
	if l.cfg.SignOnRequired && t.MTI != specs.MTINetworkMgmt && !v.signedOn.Load() {
		l.sw.metrics.refused.WithLabelValues(l.cfg.Name, "not_signed_on").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, ReasonNotSignedOn
		return false
	}
	return true
}

// observe follows the link's sign-on and sign-off once the switch
// answered them 00.
func (v *vanLink) observe(t *pipeline.Txn) {
	if t.MTI != specs.MTINetworkMgmt || t.Code != codes.Approved {
		return
	}
	switch code, _ := t.Request.GetString(specs.NetworkMgmtCode); code {
	case specs.NetMgmtSignOn:
		v.signedOn.Store(true)
	case specs.NetMgmtSignOff:
		v.signedOn.Store(false)
	}
}

package payswitch

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
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
func (l *listener) observe(v *vanLink, t *pipeline.Txn) {
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
func (l *listener) linkClosed(v *vanLink) {
	if v.signedOn.Swap(false) {
		l.signedOn.Add(-1)
	}
}

// ListenerLinks is one listener's state in GET /v1/links.
type ListenerLinks struct {
	Listener       string `json:"listener"`
	TLS            bool   `json:"tls"`
	SignOnRequired bool   `json:"sign_on_required"`
	Connections    int64  `json:"connections"`
	SignedOn       int64  `json:"signed_on"`
}

// listenerLinks reports every listener's connections and sign-ons.
func (s *Switch) listenerLinks() []ListenerLinks {
	var out []ListenerLinks
	for _, l := range s.listeners {
		out = append(out, ListenerLinks{Listener: l.cfg.Name, TLS: l.tls != nil, SignOnRequired: l.cfg.SignOnRequired,
			Connections: l.count.Load(), SignedOn: l.signedOn.Load()})
	}
	return out
}

// signedOnCollector exports each listener's signed-on links.
type signedOnCollector struct {
	sw   *Switch
	desc *prometheus.Desc
}

func (c signedOnCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c signedOnCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.sw.listeners {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.signedOn.Load()), l.cfg.Name)
	}
}

func registerSignedOn(s *Switch, reg prometheus.Registerer) {
	reg.MustRegister(signedOnCollector{sw: s, desc: prometheus.NewDesc("payswitch_listener_links_signed_on",
		"Connections of the listener signed on (0800 DE 70 001) and not signed off.", []string{"listener"}, nil)})
}

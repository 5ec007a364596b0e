package payswitch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

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

// signOffLinks sends every signed-on connection of the listener an 0800
// with DE 70 002 (the switch signs off) and waits up to
// linkSignOffTimeout (or ctx) for the answers. Run at shutdown once the
// in-flight transactions are answered, before the connections close.
func (l *listener) signOffLinks(ctx context.Context) {
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.signOff(ctx, c)
		}()
	}
	wg.Wait()
}

func (l *listener) signOff(ctx context.Context, c *connection.Connection) {
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

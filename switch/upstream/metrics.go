package upstream

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/kbpay/switch/internal/promreg"
)

// Metrics are the issuer-link metrics of all routes.
type Metrics struct {
	upstreamLatency *prometheus.HistogramVec
	lateResponses   *prometheus.CounterVec
	signOns         *prometheus.CounterVec
	breakerChanges  *prometheus.CounterVec
	keyChanges      keyChangeMetrics

	mu    sync.Mutex
	links map[string]*Link // routes reported by Collect

	linksUp, stansInUse, endpointUp, breakerState, endpointRequests *prometheus.Desc
}

// NewMetrics registers the issuer-link metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		upstreamLatency: promreg.HistogramVec(reg, "issuer_duration_seconds",
			"Time from sending a request to an issuer to its answer or timeout, by route and outcome (answered, timed_out, error).",
			prometheus.ExponentialBuckets(0.0005, 2, 16), "route", "outcome"),
		lateResponses: promreg.CounterVec(reg, "issuer_late_responses_total",
			"Issuer answers that arrived after their request timed out, or matched none.", "route"),
		signOns: promreg.CounterVec(reg, "issuer_sign_ons_total",
			"Successful 0800 sign-ons on issuer links, by route.", "route"),
		breakerChanges: promreg.CounterVec(reg, "issuer_breaker_transitions_total",
			"Circuit breaker state changes per issuer endpoint, by the state entered.", "route", "addr", "state"),
		keyChanges: newKeyChangeMetrics(reg),
		links:      map[string]*Link{},
		linksUp: prometheus.NewDesc("payswitch_issuer_links_up",
			"Signed-on links to the issuer route.", []string{"route"}, nil),
		stansInUse: prometheus.NewDesc("payswitch_issuer_stans_in_use",
			"STANs of the issuer route owned by requests in flight, unanswered requests in quarantine and unsettled give-backs (999,999 / store.stan_partitions is the limit).", []string{"route"}, nil),
		endpointUp: prometheus.NewDesc("payswitch_issuer_endpoint_links_up",
			"Signed-on links to one issuer endpoint.", []string{"route", "addr"}, nil),
		breakerState: prometheus.NewDesc("payswitch_issuer_endpoint_breaker_state",
			"Circuit breaker of the issuer endpoint: 0 closed, 1 half-open, 2 open.", []string{"route", "addr"}, nil),
		endpointRequests: prometheus.NewDesc("payswitch_issuer_endpoint_requests_total",
			"Requests sent to one issuer endpoint, by outcome (sent, answered, timeout).", []string{"route", "addr", "outcome"}, nil),
	}
	reg.MustRegister(m)
	return m
}

// Issuer exchange outcomes, the issuer_duration_seconds outcome label.
const (
	OutcomeAnswered = "answered"  // an answer came (whatever its DE 39)
	OutcomeTimedOut = "timed_out" // no answer within the route timeout
	OutcomeError    = "error"     // the link failed or the answer did not match
)

// register reports l's route (replacing a link of the same name: a reload).
func (m *Metrics) register(route string, l *Link) {
	for _, o := range []string{OutcomeAnswered, OutcomeTimedOut, OutcomeError} {
		m.upstreamLatency.WithLabelValues(route, o) // alerts have series from the start
	}
	m.lateResponses.WithLabelValues(route)
	m.signOns.WithLabelValues(route)
	m.mu.Lock()
	m.links[route] = l
	m.mu.Unlock()
}

// unregister stops reporting l's route unless another link replaced it.
func (m *Metrics) unregister(route string, l *Link) {
	m.mu.Lock()
	if m.links[route] == l {
		delete(m.links, route)
	}
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.linksUp, m.stansInUse, m.endpointUp, m.breakerState, m.endpointRequests} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: link and breaker state and
// per-endpoint throughput of every route.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	links := make(map[string]*Link, len(m.links))
	for k, v := range m.links {
		links[k] = v
	}
	m.mu.Unlock()
	for route, l := range links {
		ch <- prometheus.MustNewConstMetric(m.linksUp, prometheus.GaugeValue, float64(l.Up()), route)
		ch <- prometheus.MustNewConstMetric(m.stansInUse, prometheus.GaugeValue, float64(l.STANsInUse()), route)
		for _, e := range *l.eps.Load() {
			ch <- prometheus.MustNewConstMetric(m.endpointUp, prometheus.GaugeValue, float64(e.up()), route, e.cfg.Addr)
			ch <- prometheus.MustNewConstMetric(m.breakerState, prometheus.GaugeValue, breakerValue(e.breaker.State()), route, e.cfg.Addr)
			for outcome, n := range map[string]uint64{"sent": e.sent.Load(), "answered": e.answered.Load(), "timeout": e.timeouts.Load()} {
				ch <- prometheus.MustNewConstMetric(m.endpointRequests, prometheus.CounterValue, float64(n), route, e.cfg.Addr, outcome)
			}
		}
	}
}

func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

package upstream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the issuer-link metrics of all routes.
type Metrics struct {
	reg             prometheus.Registerer
	upstreamLatency *prometheus.HistogramVec
	lateResponses   *prometheus.CounterVec
	signOns         *prometheus.CounterVec
}

// NewMetrics registers the issuer-link metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "payswitch", Name: "issuer_duration_seconds",
			Help:    "Time from sending a request to an issuer to its answer or timeout, by route and outcome (answered, timed_out, error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "outcome"}),
		lateResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "issuer_late_responses_total",
			Help: "Issuer answers that arrived after their request timed out, or matched none.",
		}, []string{"route"}),
		signOns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "issuer_sign_ons_total",
			Help: "Successful 0800 sign-ons on issuer links, by route.",
		}, []string{"route"}),
	}
	reg.MustRegister(m.upstreamLatency, m.lateResponses, m.signOns)
	return m
}

// Issuer exchange outcomes, the issuer_duration_seconds outcome label.
const (
	OutcomeAnswered = "answered"  // an answer came (whatever its DE 39)
	OutcomeTimedOut = "timed_out" // no answer within the route timeout
	OutcomeError    = "error"     // the link failed or the answer did not match
)

func (m *Metrics) register(route string, l *Link) {
	for _, o := range []string{OutcomeAnswered, OutcomeTimedOut, OutcomeError} {
		m.upstreamLatency.WithLabelValues(route, o) // alerts have series from the start
	}
	m.lateResponses.WithLabelValues(route)
	m.signOns.WithLabelValues(route)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "payswitch", Name: "issuer_links_up",
		Help:        "Signed-on links to the issuer route.",
		ConstLabels: prometheus.Labels{"route": route},
	}, func() float64 { return float64(l.Up()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "payswitch", Name: "issuer_stans_in_use",
		Help:        "STANs of the issuer route owned by requests in flight, unanswered requests in quarantine and unsettled give-backs (999,999 / store.stan_partitions is the limit).",
		ConstLabels: prometheus.Labels{"route": route},
	}, func() float64 { return float64(l.STANsInUse()) }))
}

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
			Namespace: "switch", Name: "issuer_duration_seconds",
			Help:    "Time from sending a request to an issuer to its answer or timeout, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		lateResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switch", Name: "issuer_late_responses_total",
			Help: "Issuer answers that arrived after their request timed out, or matched none.",
		}, []string{"route"}),
		signOns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switch", Name: "issuer_sign_ons_total",
			Help: "Successful 0800 sign-ons on issuer links, by route.",
		}, []string{"route"}),
	}
	reg.MustRegister(m.upstreamLatency, m.lateResponses, m.signOns)
	return m
}

func (m *Metrics) register(route string, l *Link) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "switch", Name: "issuer_links_up",
		Help:        "Signed-on links to the issuer route.",
		ConstLabels: prometheus.Labels{"route": route},
	}, func() float64 { return float64(l.Up()) }))
}

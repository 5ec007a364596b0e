package payswitch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/opsmetrics"
)

// metrics are the switch's own series. Labels are small fixed sets:
// listener, MTI, route and response code, never card data, terminal IDs or
// STANs; values from the wire are folded into "other".
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    *prometheus.GaugeVec
	connections *prometheus.GaugeVec
	refused     *prometheus.CounterVec
	frameErrors *prometheus.CounterVec
	panics      prometheus.Counter
	ops         *opsmetrics.Ops // build, journal commits, reloads
}

// newMetrics registers the switch's metrics, the labelled ones created at
// zero for cfg's listeners and routes.
func newMetrics(reg prometheus.Registerer, cfg config.Config) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "requests_total",
			Help: "Terminal requests answered, by listener, request MTI, issuer route and DE 39.",
		}, []string{"listener", "mti", "route", "rc"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "payswitch", Name: "request_duration_seconds",
			Help:    "Time from reading a terminal request to writing its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"listener", "mti"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "payswitch", Name: "in_flight",
			Help: "Terminal requests being processed.",
		}, []string{"listener"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "payswitch", Name: "connections",
			Help: "Open terminal/VAN connections.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "refused_total",
			Help: "Connections refused or requests shed, by reason (max_connections, max_in_flight, rate_limit).",
		}, []string{"listener", "reason"}),
		frameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "input_errors_total",
			Help: "Bad input from terminals, by reason (undecodable, framing, idle, unexpected_response, ...).",
		}, []string{"listener", "reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "panics_total",
			Help: "Panics recovered in the pipeline (each answered 96).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.connections, m.refused, m.frameErrors, m.panics)
	m.ops = opsmetrics.New(reg)
	m.preinit(cfg)
	return m
}

var knownMTIs = map[string]bool{
	specs.MTIAuthRequest: true, specs.MTIFinancialRequest: true, specs.MTIAdvice: true,
	specs.MTIReversal: true, specs.MTIReversalAdvice: true, specs.MTIReversalRepeat: true,
	specs.MTIReconciliation: true, specs.MTINetworkMgmt: true,
}

func mtiLabel(mti string) string {
	if knownMTIs[mti] {
		return mti
	}
	return "other"
}

func rcLabel(c codes.Code) string {
	if _, ok := codes.Lookup(c); ok {
		return string(c)
	}
	return "other"
}

// preinit creates the labelled series of the configured listeners and
// routes at zero, so that alerts over rates and ratios have series before
// the first event.
func (m *metrics) preinit(cfg config.Config) {
	for _, l := range cfg.Listeners {
		m.inFlight.WithLabelValues(l.Name)
		m.connections.WithLabelValues(l.Name)
		for _, reason := range []string{"max_connections", "max_in_flight", "rate_limit", "link_rate", "not_signed_on", "tls_handshake"} {
			m.refused.WithLabelValues(l.Name, reason)
		}
		for _, reason := range []string{"undecodable", "zero_length", "too_long", "bad_header", "slow_frame", "read_error", "idle", "unexpected_response"} {
			m.frameErrors.WithLabelValues(l.Name, reason)
		}
		for _, mti := range watchedMTIs {
			m.duration.WithLabelValues(l.Name, mti)
		}
	}
	m.preinitRoute(cfg, "none")
	for _, r := range cfg.Routes {
		m.preinitRoute(cfg, r.Name)
	}
}

// watchedMTIs and watchedCodes are the request series created at start.
var (
	watchedMTIs  = []string{specs.MTIAuthRequest, specs.MTIFinancialRequest, specs.MTIReversal}
	watchedCodes = []codes.Code{codes.Approved, codes.DoNotHonour, codes.InsufficientFunds,
		codes.IncorrectPIN, codes.IssuerUnavailable, codes.SystemError}
)

// preinitRoute creates the request series of one route (at start, and
// for a route a reload adds) on every listener.
func (m *metrics) preinitRoute(cfg config.Config, route string) {
	for _, l := range cfg.Listeners {
		for _, mti := range watchedMTIs {
			for _, rc := range watchedCodes {
				m.requests.WithLabelValues(l.Name, mti, route, string(rc))
			}
		}
	}
}

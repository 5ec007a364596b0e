// Package trafficmetrics are the switch's terminal traffic series (requests by listener, MTI, route and response code; connections, refusals, input errors, panics).
package trafficmetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/internal/promreg"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/terminalserver"
)

// Series are the switch's terminal traffic series. Labels are small fixed sets:
// listener, MTI, route and response code, never card data, terminal IDs or
// STANs; values from the wire are folded into "other".
type Series struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    *prometheus.GaugeVec
	connections *prometheus.GaugeVec
	refused     *prometheus.CounterVec
	frameErrors *prometheus.CounterVec
	panics      prometheus.Counter
}

// New registers the series, the labelled ones created at zero for cfg's
// listeners and routes.
func New(reg prometheus.Registerer, cfg config.Config) *Series {
	m := &Series{
		requests: promreg.CounterVec(reg, "requests_total",
			"Terminal requests answered, by listener, request MTI, issuer route and DE 39.",
			"listener", "mti", "route", "rc"),
		duration: promreg.HistogramVec(reg, "request_duration_seconds",
			"Time from reading a terminal request to writing its answer.",
			prometheus.ExponentialBuckets(0.0001, 2, 18), "listener", "mti"),
		inFlight: promreg.GaugeVec(reg, "in_flight",
			"Terminal requests being processed.", "listener"),
		connections: promreg.GaugeVec(reg, "connections",
			"Open terminal/VAN connections.", "listener"),
		refused: promreg.CounterVec(reg, "refused_total",
			"Connections refused or requests shed, by reason (max_connections, max_in_flight, rate_limit).",
			"listener", "reason"),
		frameErrors: promreg.CounterVec(reg, "input_errors_total",
			"Bad input from terminals, by reason (undecodable, framing, idle, unexpected_response, ...).",
			"listener", "reason"),
		panics: promreg.Counter(reg, "panics_total",
			"Panics recovered in the pipeline (each answered 96)."),
	}
	m.preinit(cfg)
	return m
}

// Server is the listeners' view of the series (switch/terminalserver).
func (m *Series) Server() *terminalserver.Metrics {
	return &terminalserver.Metrics{Requests: m.requests, Duration: m.duration, InFlight: m.inFlight,
		Connections: m.connections, Refused: m.refused, InputErrors: m.frameErrors, Panics: m.panics}
}

// preinit creates the labelled series of the configured listeners and
// routes at zero, so that alerts over rates and ratios have series before
// the first event.
func (m *Series) preinit(cfg config.Config) {
	routes := []string{"none"}
	for _, r := range cfg.Routes {
		routes = append(routes, r.Name)
	}
	for _, l := range cfg.Listeners {
		m.PreinitListener(l.Name, routes)
	}
}

// PreinitListener creates the series of one listener (at start, and for
// a listener a reload adds), its request series on every route.
func (m *Series) PreinitListener(name string, routes []string) {
	m.inFlight.WithLabelValues(name)
	m.connections.WithLabelValues(name)
	for _, reason := range []string{"max_connections", "max_in_flight", "rate_limit", "link_rate", "not_signed_on", "tls_handshake"} {
		m.refused.WithLabelValues(name, reason)
	}
	for _, reason := range []string{"undecodable", "zero_length", "too_long", "bad_header", "slow_frame", "read_error", "idle", "unexpected_response"} {
		m.frameErrors.WithLabelValues(name, reason)
	}
	for _, mti := range watchedMTIs {
		m.duration.WithLabelValues(name, mti)
	}
	for _, route := range routes {
		m.PreinitRoute([]string{name}, route)
	}
}

// watchedMTIs and watchedCodes are the request series created at start.
var (
	watchedMTIs  = []string{specs.MTIAuthRequest, specs.MTIFinancialRequest, specs.MTIReversal}
	watchedCodes = []codes.Code{codes.Approved, codes.DoNotHonour, codes.InsufficientFunds,
		codes.IncorrectPIN, codes.IssuerUnavailable, codes.SystemError}
)

// PreinitRoute creates the request series of one route (at start, and
// for a route a reload adds) on the listeners named.
func (m *Series) PreinitRoute(listeners []string, route string) {
	for _, l := range listeners {
		for _, mti := range watchedMTIs {
			for _, rc := range watchedCodes {
				m.requests.WithLabelValues(l, mti, route, string(rc))
			}
		}
	}
}

// RefusedOverRate counts a request refused by a per-terminal limit.
func (m *Series) RefusedOverRate(listener string) {
	m.refused.WithLabelValues(listener, "rate_limit").Inc()
}

package payswitch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/internal/promreg"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/opsmetrics"
	"github.com/kbpay/switch/switch/store"
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

// safStateCollector reports the SAF queue by state from the store at each
// scrape, so the numbers are right after a restart too.
type safStateCollector struct {
	desk store.SAFDesk
	desc *prometheus.Desc
}

func newSAFStateCollector(desk store.SAFDesk) *safStateCollector {
	return &safStateCollector{desk: desk, desc: prometheus.NewDesc("payswitch_saf_items",
		"Store-and-forward give-backs by state: pending (being repeated), review (expired: manual review), done, resolved (closed by an operator).",
		[]string{"state"}, nil)}
}

func (c *safStateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *safStateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.desk.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, state := range store.SAFStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[state]), state)
	}
}

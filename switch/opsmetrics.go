package payswitch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/internal/buildinfo"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
)

// opsMetrics are the series operators alert on besides the traffic
// counters: the build, the journal's commit latency, configuration
// reloads. docs/metrics.md lists every metric.
type opsMetrics struct {
	commit      *prometheus.HistogramVec
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	reloadValid prometheus.Gauge
}

func newOpsMetrics(reg prometheus.Registerer) *opsMetrics {
	bi := buildinfo.Get()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "payswitch", Name: "build_info",
		Help: "Always 1; the labels say which build runs (version, commit, Go version).",
	}, []string{"version", "commit", "go_version"})
	build.WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)
	m := &opsMetrics{
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "payswitch", Name: "journal_commit_duration_seconds",
			Help:    "Time of one journal group commit (fsync included), by result (ok, failed).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "payswitch", Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP, POST /v1/reload), by result (applied, refused).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "payswitch", Name: "config_last_reload_timestamp_seconds",
			Help: "Unix time of the last reload attempt (0: none since start).",
		}),
		reloadValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "payswitch", Name: "config_last_reload_successful",
			Help: "1 when the last reload was applied (or none was tried), 0 when it was refused.",
		}),
	}
	for _, r := range []string{"ok", "failed"} {
		m.commit.WithLabelValues(r)
	}
	for _, r := range []string{"applied", "refused"} {
		m.reloads.WithLabelValues(r)
	}
	m.reloadValid.Set(1)
	reg.MustRegister(build, m.commit, m.reloads, m.lastReload, m.reloadValid)
	return m
}

// observeCommit is the embedded store's Options.OnCommit.
func (m *opsMetrics) observeCommit(d time.Duration, _ int, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.commit.WithLabelValues(result).Observe(d.Seconds())
}

// reloaded records a configuration reload's result.
func (m *opsMetrics) reloaded(err error) {
	m.lastReload.SetToCurrentTime()
	if err != nil {
		m.reloads.WithLabelValues("refused").Inc()
		m.reloadValid.Set(0)
		return
	}
	m.reloads.WithLabelValues("applied").Inc()
	m.reloadValid.Set(1)
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

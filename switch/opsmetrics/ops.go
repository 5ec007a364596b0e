// Package opsmetrics are the series operators alert on besides the traffic counters: the build, journal commits, configuration reloads.
package opsmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/internal/buildinfo"
)

// Ops are the series operators alert on besides the traffic
// counters: the build, the journal's commit latency, configuration
// reloads. docs/metrics.md lists every metric.
type Ops struct {
	commit      *prometheus.HistogramVec
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	reloadValid prometheus.Gauge
}

// New registers the series on reg.
func New(reg prometheus.Registerer) *Ops {
	bi := buildinfo.Get()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "payswitch", Name: "build_info",
		Help: "Always 1; the labels say which build runs (version, commit, Go version).",
	}, []string{"version", "commit", "go_version"})
	build.WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)
	m := &Ops{
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

// ObserveCommit is the embedded store's Options.OnCommit.
func (m *Ops) ObserveCommit(d time.Duration, _ int, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.commit.WithLabelValues(result).Observe(d.Seconds())
}

// Reloaded records a configuration reload's result.
func (m *Ops) Reloaded(err error) {
	m.lastReload.SetToCurrentTime()
	if err != nil {
		m.reloads.WithLabelValues("refused").Inc()
		m.reloadValid.Set(0)
		return
	}
	m.reloads.WithLabelValues("applied").Inc()
	m.reloadValid.Set(1)
}

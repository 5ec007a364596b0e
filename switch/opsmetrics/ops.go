// Package opsmetrics are the series operators alert on besides the traffic counters: the build, journal commits, configuration reloads.
package opsmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/internal/buildinfo"
	"github.com/kbpay/switch/internal/promreg"
)

// Ops are the series operators alert on besides the traffic
// counters: the build, the journal's commit latency, configuration
// reloads. docs/metrics.md lists every metric.
type Ops struct {
	commit      *prometheus.HistogramVec
	writes      prometheus.Histogram
	hold        prometheus.Histogram
	holdGained  prometheus.Histogram
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	reloadValid prometheus.Gauge
}

// New registers the series on reg.
func New(reg prometheus.Registerer) *Ops {
	bi := buildinfo.Get()
	promreg.GaugeVec(reg, "build_info",
		"Always 1; the labels say which build runs (version, commit, Go version).",
		"version", "commit", "go_version").WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)
	m := &Ops{
		commit: promreg.HistogramVec(reg, "journal_commit_duration_seconds",
			"Time of one journal group commit (fsync included), by result (ok, failed).",
			prometheus.ExponentialBuckets(0.0001, 2, 18), "result"),
		writes: promreg.Histogram(reg, "journal_commit_writes",
			"Writes one committed journal group carried (group commit: one fsync for them all).",
			prometheus.ExponentialBuckets(1, 2, 10)),
		hold: promreg.Histogram(reg, "journal_group_hold_seconds",
			"How long the embedded journal held a group for more writes before committing it (journal.group_wait).",
			prometheus.ExponentialBuckets(0.00002, 2, 10)),
		holdGained: promreg.Histogram(reg, "journal_group_hold_gained_writes",
			"Writes that joined a held group while it was held (0: the hold gained nothing).",
			append([]float64{0}, prometheus.ExponentialBuckets(1, 2, 9)...)),
		reloads: promreg.CounterVec(reg, "config_reloads_total",
			"Configuration reloads (SIGHUP, POST /v1/reload), by result (applied, refused).", "result"),
		lastReload: promreg.Gauge(reg, "config_last_reload_timestamp_seconds",
			"Unix time of the last reload attempt (0: none since start)."),
		reloadValid: promreg.Gauge(reg, "config_last_reload_successful",
			"1 when the last reload was applied (or none was tried), 0 when it was refused."),
	}
	for _, r := range []string{"ok", "failed"} {
		m.commit.WithLabelValues(r)
	}
	for _, r := range []string{"applied", "refused"} {
		m.reloads.WithLabelValues(r)
	}
	m.reloadValid.Set(1)
	return m
}

// ObserveCommit is the stores' Options.OnCommit: the commit's latency by
// result and, for a group that committed, how many writes shared it.
func (m *Ops) ObserveCommit(d time.Duration, writes int, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.commit.WithLabelValues(result).Observe(d.Seconds())
	if err == nil {
		m.writes.Observe(float64(writes))
	}
}

// ObserveHold is the embedded store's Options.OnHold: how long a group
// was held for more writes and how many joined it meanwhile.
func (m *Ops) ObserveHold(d time.Duration, gained int) {
	m.hold.Observe(d.Seconds())
	m.holdGained.Observe(float64(gained))
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

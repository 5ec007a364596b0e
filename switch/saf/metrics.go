package saf

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/internal/promreg"
	"github.com/kbpay/switch/switch/store"
)

// metrics count the store-and-forward queue's work.
type metrics struct {
	attempts *prometheus.CounterVec
	review   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, q store.Queue, desk store.SAFDesk) *metrics {
	m := &metrics{
		attempts: promreg.CounterVec(reg, "saf_attempts_total",
			"Store-and-forward reversal attempts, by route and result (acknowledged, retry, review).", "route", "result"),
		review: promreg.Counter(reg, "saf_manual_review_total",
			"Reversals that expired unacknowledged and wait for manual review."),
	}
	reg.MustRegister(newStateCollector(desk))
	promreg.GaugeFunc(reg, "saf_depth", "Reversals waiting in the store-and-forward queue.", func() float64 {
		n, _ := q.Depth(context.Background())
		return float64(n)
	})
	return m
}

// series creates the give-back attempt series of a route at zero:
// alerts have series from the start (and from a reload that adds it).
func (m *metrics) series(route string) {
	for _, result := range []string{"acknowledged", "retry", "review"} {
		m.attempts.WithLabelValues(route, result)
	}
}

// stateCollector reports the SAF queue by state from the store at each
// scrape, so the numbers are right after a restart too.
type stateCollector struct {
	desk store.SAFDesk
	desc *prometheus.Desc
}

func newStateCollector(desk store.SAFDesk) *stateCollector {
	return &stateCollector{desk: desk, desc: prometheus.NewDesc("payswitch_saf_items",
		"Store-and-forward give-backs by state: pending (being repeated), review (expired: manual review), done, resolved (closed by an operator).",
		[]string{"state"}, nil)}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
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

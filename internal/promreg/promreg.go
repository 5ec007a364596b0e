// Package promreg builds the switch's Prometheus series and registers them
// on the registerer it is passed (never a global one): one call a series
// instead of an options literal and a MustRegister apiece. Every series is
// in the "payswitch" namespace; name is the rest of the metric's name.
package promreg

import "github.com/prometheus/client_golang/prometheus"

// Namespace prefixes every series built here: payswitch_<name>.
const Namespace = "payswitch"

// Counter registers the counter payswitch_<name> on reg and returns it.
func Counter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

// CounterVec registers the counter payswitch_<name>{labels} on reg and
// returns it.
func CounterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	reg.MustRegister(c)
	return c
}

// Gauge registers the gauge payswitch_<name> on reg and returns it.
func Gauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	reg.MustRegister(g)
	return g
}

// GaugeVec registers the gauge payswitch_<name>{labels} on reg and returns
// it.
func GaugeVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	reg.MustRegister(g)
	return g
}

// GaugeFunc registers the gauge payswitch_<name> whose value is fn's at
// each scrape.
func GaugeFunc(reg prometheus.Registerer, name, help string, fn func() float64) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

// HistogramVec registers the histogram payswitch_<name>{labels} with
// buckets on reg and returns it.
func HistogramVec(reg prometheus.Registerer, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	reg.MustRegister(h)
	return h
}

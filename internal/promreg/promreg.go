// Package promreg builds the switch's Prometheus series and registers them
// on the registerer it is passed (never a global one): one call a series
// instead of an options literal and a MustRegister apiece. Every series is
// in the "payswitch" namespace; name is the rest of the metric's name.
package promreg

import "github.com/prometheus/client_golang/prometheus"

// Namespace prefixes every series built here: payswitch_<name>.
const Namespace = "payswitch"

func opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: Namespace, Name: name, Help: help}
}

// register registers c on reg (panicking as MustRegister does) and
// returns it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	reg.MustRegister(c)
	return c
}

// Counter registers the counter payswitch_<name> on reg and returns it.
func Counter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	return register(reg, prometheus.NewCounter(prometheus.CounterOpts(opts(name, help))))
}

// CounterVec registers the counter payswitch_<name>{labels} on reg and
// returns it.
func CounterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), labels))
}

// Gauge registers the gauge payswitch_<name> on reg and returns it.
func Gauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	return register(reg, prometheus.NewGauge(prometheus.GaugeOpts(opts(name, help))))
}

// GaugeVec registers the gauge payswitch_<name>{labels} on reg and returns
// it.
func GaugeVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts(opts(name, help)), labels))
}

// GaugeFunc registers the gauge payswitch_<name> whose value is fn's at
// each scrape.
func GaugeFunc(reg prometheus.Registerer, name, help string, fn func() float64) {
	register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts(name, help)), fn))
}

// HistogramVec registers the histogram payswitch_<name>{labels} with
// buckets on reg and returns it.
func HistogramVec(reg prometheus.Registerer, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels))
}

// Histogram registers the histogram payswitch_<name> with buckets on reg
// and returns it.
func Histogram(reg prometheus.Registerer, name, help string, buckets []float64) prometheus.Histogram {
	return register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}))
}

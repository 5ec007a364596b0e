package hsm

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HSM latency histograms and error counters, by backend
// and operation. Build one per registry with NewMetrics and wrap each
// backend with Instrument.
type Metrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewMetrics registers the HSM metrics with reg (nil: not registered):
// hsm_operation_seconds{backend,op} and
// hsm_operation_errors_total{backend,op,kind}, kind one of unavailable,
// timeout, device, refused (a wrong PIN block, MAC or key: the HSM worked)
// and other.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hsm_operation_seconds",
			Help:    "Latency of HSM operations by backend and operation.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"backend", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsm_operation_errors_total",
			Help: "HSM operations that failed, by backend, operation and kind of failure.",
		}, []string{"backend", "op", "kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.latency, m.errors)
	}
	return m
}

// errorKind names a failure for the error counter.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrHSMUnavailable):
		return "unavailable"
	case errors.Is(err, ErrHSMTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrHSMFault):
		return "device"
	case errors.Is(err, ErrMACMismatch), errors.Is(err, ErrInvalidPINBlock), errors.Is(err, ErrDecrypt),
		errors.Is(err, ErrKeyNotFound), errors.Is(err, ErrWrongUsage):
		return "refused"
	}
	return "other"
}

// Instrument returns h with every operation timed and its failures
// counted under backend. Close is passed through.
func Instrument(h HSM, backend string, m *Metrics) HSM {
	return &instrumented{h: h, backend: backend, m: m}
}

type instrumented struct {
	h       HSM
	backend string
	m       *Metrics
}

func (i *instrumented) observe(op string, start time.Time, err error) {
	i.m.latency.WithLabelValues(i.backend, op).Observe(time.Since(start).Seconds())
	if err != nil {
		i.m.errors.WithLabelValues(i.backend, op, errorKind(err)).Inc()
	}
}

func (i *instrumented) EncryptPAN(ctx context.Context, key KeyRef, pan string) (_ EncryptedPAN, err error) {
	defer func(start time.Time) { i.observe("encrypt_pan", start, err) }(time.Now())
	return i.h.EncryptPAN(ctx, key, pan)
}

func (i *instrumented) DecryptPAN(ctx context.Context, enc EncryptedPAN) (_ string, err error) {
	defer func(start time.Time) { i.observe("decrypt_pan", start, err) }(time.Now())
	return i.h.DecryptPAN(ctx, enc)
}

func (i *instrumented) HashPAN(ctx context.Context, key KeyRef, pan string) (_ PANHash, err error) {
	defer func(start time.Time) { i.observe("hash_pan", start, err) }(time.Now())
	return i.h.HashPAN(ctx, key, pan)
}

func (i *instrumented) TranslatePIN(ctx context.Context, req TranslatePINRequest) (_ []byte, err error) {
	defer func(start time.Time) { i.observe("translate_pin", start, err) }(time.Now())
	return i.h.TranslatePIN(ctx, req)
}

func (i *instrumented) GenerateMAC(ctx context.Context, req MACRequest) (_ []byte, err error) {
	defer func(start time.Time) { i.observe("generate_mac", start, err) }(time.Now())
	return i.h.GenerateMAC(ctx, req)
}

func (i *instrumented) VerifyMAC(ctx context.Context, req VerifyMACRequest) (err error) {
	defer func(start time.Time) { i.observe("verify_mac", start, err) }(time.Now())
	return i.h.VerifyMAC(ctx, req)
}

func (i *instrumented) Close() error { return i.h.Close() }

// Unwrap returns the instrumented backend (for its optional abilities).
func (i *instrumented) Unwrap() HSM { return i.h }

// Errors is the error counter, for tests.
func (m *Metrics) Errors() *prometheus.CounterVec { return m.errors }

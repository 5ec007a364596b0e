package upstream

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/promreg"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// Switch-initiated key change (routes[].key_exchange.every). The key
// always travels from the issuer to the switch, as in an issuer's own key
// change: on schedule the switch sends an 0800 with DE 70 161 and no DE
// 48, asking for a new zone PIN key; the issuer answers 0810 00 and sends
// the key under pin.zmk in its own 0800/161, which keyChange imports and
// acknowledges. Until that 0810 00 both sides use the old key, and the old
// version stays in the HSM for answers in flight, so no PIN block is ever
// under a key the other side does not hold.

// Clock is what the key-change schedule waits on; tests inject one.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WithClock sets the clock of the key-change schedule (default the
// system clock).
func WithClock(c Clock) Option { return func(l *Link) { l.clock = c } }

// KeyRequestRetry is how soon a key request that failed (no signed-on
// link, no answer, an answer other than 00) is tried again; after one
// succeeds the schedule is back to key_exchange.every.
const KeyRequestRetry = config.MinKeyExchangeEvery

// Key change outcomes: the outcome label of the key-change metrics.
const (
	KeyChangeImported = "imported" // an issuer's key change took: new version current
	KeyChangeRefused  = "refused"  // an issuer's key change was refused: old key stays
	KeyRequestSent    = "sent"     // the issuer answered a key request 00
	KeyRequestFailed  = "failed"   // a key request got no 00 (retried after KeyRequestRetry)
)

type keyChangeMetrics struct {
	changes  *prometheus.CounterVec
	requests *prometheus.CounterVec
}

func newKeyChangeMetrics(reg prometheus.Registerer) keyChangeMetrics {
	return keyChangeMetrics{
		changes: promreg.CounterVec(reg, "issuer_key_changes_total",
			"Issuer key changes (0800, DE 70 161 with a new zone PIN key), by route and outcome (imported, refused; adopted: taken by another instance, imported from the store).",
			"route", "outcome"),
		requests: promreg.CounterVec(reg, "issuer_key_change_requests_total",
			"Switch-initiated key requests (0800, DE 70 161 without a key; routes[].key_exchange), by route and outcome (sent, failed).",
			"route", "outcome"),
	}
}

// keySchedule is a running schedule: stop ends it, done is closed when it
// has.
type keySchedule struct {
	stop, done chan struct{}
	once       sync.Once
}

// startKeySchedule starts the route's key-change schedule when it has
// one and the link takes key changes (WithKeyExchange).
func (l *Link) startKeySchedule() {
	every := l.cfg.KeyExchangeEvery()
	if every <= 0 || l.cfg.PIN == nil || l.cfg.PIN.ZMK == "" || l.sched != nil {
		return
	}
	if l.keys == nil {
		l.log.Warn("key_exchange set but the link takes no key changes (no HSM given): no scheduled key change")
		return
	}
	if l.clock == nil {
		l.clock = systemClock{}
	}
	ks := &keySchedule{stop: make(chan struct{}), done: make(chan struct{})}
	l.sched = ks
	l.log.Info("scheduled key change on", zap.Duration("every", every), zap.String("zpk", l.cfg.PIN.Key), zap.String("zmk", l.cfg.PIN.ZMK))
	go func() {
		defer close(ks.done)
		wait := every
		for {
			select {
			case <-ks.stop:
				return
			case <-l.clock.After(wait):
			}
			wait = every
			if err := l.RequestKeyChange(); err != nil {
				wait = min(every, KeyRequestRetry)
				l.log.Warn("scheduled key change: request failed, old key stays; retrying", zap.Duration("in", wait), zap.Error(err))
			}
		}
	}()
}

// stopKeySchedule ends the schedule and waits for a request in progress.
func (l *Link) stopKeySchedule() {
	if ks := l.sched; ks != nil {
		ks.once.Do(func() { close(ks.stop) })
		<-ks.done
	}
}

// ErrNoLink: no signed-on link to send a key request on.
var ErrNoLink = errors.New("no signed-on issuer link")

// RequestKeyChange asks the issuer for a new zone PIN key (0800, DE 70
// 161 without a key) on one signed-on link and returns nil when it
// answers 00; the key itself comes in the issuer's own key change.
func (l *Link) RequestKeyChange() error {
	err := l.requestKeyChange()
	outcome := KeyRequestSent
	if err != nil {
		outcome = KeyRequestFailed
	}
	l.metrics.keyChanges.requests.WithLabelValues(l.cfg.Name, outcome).Inc()
	if err != nil {
		return fmt.Errorf("route %s: key request: %w", l.cfg.Name, err)
	}
	l.log.Info("key request sent: the issuer sends the new zone PIN key under the ZMK", zap.String("zpk", l.cfg.PIN.Key))
	return nil
}

func (l *Link) requestKeyChange() error {
	for _, e := range l.order() {
		if e.retired.Load() {
			continue
		}
		if c := e.conn(); c != nil {
			return l.netMgmt(c, specs.NetMgmtKeyChange, l.cfg.Timeout)
		}
	}
	return ErrNoLink
}

package terminalserver

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	connection "github.com/moov-io/iso8583-connection"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Set is the switch's listeners in force. A reload replaces the list
// whole (copy on write), so every reader (admin listing, ListenerAddr,
// shutdown) sees one consistent set; a listener a reload removed is kept
// as retiring until its connections have wound down.
type Set struct {
	active   atomic.Pointer[[]*Listener]
	mu       sync.Mutex
	retiring []*Listener // removed, winding down (under mu)
	stopped  bool        // a shutdown began: nothing starts accepting (under mu)
	wg       sync.WaitGroup
}

// List is the listeners in force. Never modified: Replace stores a new one.
func (s *Set) List() []*Listener {
	if p := s.active.Load(); p != nil {
		return *p
	}
	return nil
}

// Find is the listener in force named name (nil when none).
func (s *Set) Find(name string) *Listener {
	for _, l := range s.List() {
		if l.cfg.Name == name {
			return l
		}
	}
	return nil
}

// Replace puts ls in force.
func (s *Set) Replace(ls []*Listener) {
	ls = slices.Clone(ls)
	s.active.Store(&ls)
}

// Serve starts l accepting, unless a shutdown already stopped the set
// (a reload racing the shutdown then leaves nothing accepting).
func (s *Set) Serve(l *Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		l.Discard()
		return
	}
	l.Serve()
}

// StopAccepting stops every listener accepting, for good: one a reload
// adds afterwards does not start.
func (s *Set) StopAccepting() {
	s.mu.Lock()
	s.stopped = true
	all := append(slices.Clone(s.List()), s.retiring...)
	s.mu.Unlock()
	for _, l := range all {
		l.StopAccepting()
	}
}

// All is the listeners in force and the retiring ones (for the shutdown).
func (s *Set) All() []*Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(slices.Clone(s.List()), s.retiring...)
}

// Retire winds down l, taken out of the set by a reload: see
// Listener.Retire; timeout bounds it (the drain timeout).
func (s *Set) Retire(l *Listener, timeout time.Duration) {
	l.retire() // stops accepting now, not when the goroutine runs
	s.mu.Lock()
	s.retiring = append(s.retiring, l)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		l.Retire(ctx)
		s.mu.Lock()
		s.retiring = slices.DeleteFunc(s.retiring, func(r *Listener) bool { return r == l })
		s.mu.Unlock()
	}()
}

// WaitRetired waits (up to ctx) for the retiring listeners to wind down.
func (s *Set) WaitRetired(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Retire is how a listener a reload removed ends: it stops accepting at
// once; a request that still arrives is declined 91
// (ReasonListenerRemoved); each connection, once its requests in flight
// are answered, is signed off when it is a signed-on VAN link (0800 DE 70
// 002, as at shutdown) and closed. ctx bounds the whole.
func (l *Listener) Retire(ctx context.Context) {
	l.retire()
	if l.served.Load() {
		select {
		case <-l.acceptDone:
		case <-ctx.Done():
		}
	}
	// No connection registers once retiring is set: serveConn winds down
	// one that comes later.
	l.mu.Lock()
	conns := make(map[*connection.Connection]*vanLink, len(l.conns))
	for c, v := range l.conns {
		conns[c] = v
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for c, v := range conns {
		wg.Go(func() { l.windDown(ctx, c, v) })
	}
	wg.Wait()
	l.CloseAll(ctx)
	l.log.Info("listener removed", zap.Int64("connections_left", l.count.Load()))
}

// windDown closes c once its requests in flight are answered, signing it
// off first when it is a signed-on VAN link; ctx bounds the whole.
func (l *Listener) windDown(ctx context.Context, c *connection.Connection, v *vanLink) {
	if !v.waitIdle(ctx) {
		l.log.Warn("closing a connection with requests still in flight", zap.Int64("in_flight", v.inFlight.Load()))
	}
	if v.signedOn.Load() {
		l.signOff(ctx, v)
	}
	_ = c.CloseCtx(ctx)
}

// lateWindDown bounds winding down a connection that completed its TLS
// handshake once the listener was closing (serveConn).
const lateWindDown = replyTimeout

// windDownLate winds down a connection that came too late to register.
func (l *Listener) windDownLate(c *connection.Connection, v *vanLink) {
	ctx, cancel := context.WithTimeout(context.Background(), lateWindDown)
	defer cancel()
	l.windDown(ctx, c, v)
}

// retire refuses what still arrives and stops accepting.
func (l *Listener) retire() {
	l.mu.Lock()
	l.retiring.Store(true)
	l.mu.Unlock()
	l.StopAccepting()
}

// Links is one listener's state in GET /v1/links.
type Links struct {
	Listener       string `json:"listener"`
	TLS            bool   `json:"tls"`
	SignOnRequired bool   `json:"sign_on_required"`
	Connections    int64  `json:"connections"`
	SignedOn       int64  `json:"signed_on"`
}

// Links reports every listener's connections and sign-ons.
func (s *Set) Links() []Links {
	var out []Links
	for _, l := range s.List() {
		out = append(out, Links{Listener: l.cfg.Name, TLS: l.tls != nil, SignOnRequired: l.cfg.SignOnRequired,
			Connections: l.count.Load(), SignedOn: l.signedOn.Load()})
	}
	return out
}

// SignedOnCollector exports each listener's signed-on links
// (payswitch_listener_links_signed_on).
func (s *Set) SignedOnCollector() prometheus.Collector {
	return signedOnCollector{set: s, desc: prometheus.NewDesc("payswitch_listener_links_signed_on",
		"Connections of the listener signed on (0800 DE 70 001) and not signed off.", []string{"listener"}, nil)}
}

type signedOnCollector struct {
	set  *Set
	desc *prometheus.Desc
}

func (c signedOnCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c signedOnCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.set.List() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.signedOn.Load()), l.cfg.Name)
	}
}

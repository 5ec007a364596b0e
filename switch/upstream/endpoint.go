package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	connection "github.com/moov-io/iso8583-connection"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/internal/cpurole"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/tlsconf"
)

// ErrBreakerOpen is the reason an endpoint was passed over: its circuit
// breaker is open (or half-open with its probes taken). It wraps
// ErrUnavailable when it is why a request did not leave.
var ErrBreakerOpen = errors.New("circuit breaker open")

// endpoint is one issuer host of a route: its pool of signed-on
// connections and its circuit breaker. The route's STANs are shared by all
// its endpoints (a give-back may leave on another endpoint than its sale).
type endpoint struct {
	cfg     config.Endpoint
	tls     *tls.Config // nil: plain TCP
	pools   atomic.Pointer[connection.Pool]
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]

	sent, answered, timeouts atomic.Uint64

	// inflight counts requests that picked the endpoint and are not done;
	// retired stops new ones (a reload removed the endpoint).
	inflight atomic.Int64
	retired  atomic.Bool
}

// errConnect is what the breaker records for a failed connect or sign-on.
var errConnect = errors.New("connect or sign-on failed")

func (l *Link) newEndpoint(ec config.Endpoint) (*endpoint, error) {
	e := &endpoint{cfg: ec}
	b := l.cfg.Breaker
	e.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        l.cfg.Name + "/" + ec.Addr,
		MaxRequests: uint32(b.Probes),
		Timeout:     b.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(b.Failures) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			l.log.Warn("issuer endpoint circuit breaker", zap.String("addr", ec.Addr),
				zap.String("from", from.String()), zap.String("to", to.String()))
			l.metrics.breakerChanges.WithLabelValues(l.cfg.Name, ec.Addr, to.String()).Inc()
		},
	})
	tlsCfg, err := tlsconf.Client(ec)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ec.Addr, err)
	}
	e.tls = tlsCfg
	pool, err := l.newPool(e)
	if err != nil {
		return nil, err
	}
	e.pools.Store(pool)
	return e, nil
}

// pool is the endpoint's current pool of links.
func (e *endpoint) pool() *connection.Pool { return e.pools.Load() }

func (l *Link) newPool(e *endpoint) (*connection.Pool, error) {
	ec := e.cfg
	addrs := make([]string, ec.Links)
	for i := range addrs {
		addrs[i] = ec.Addr
	}
	pool, err := connection.NewPool(func(addr string) (*connection.Connection, error) {
		return l.dial(addr, e.tls)
	}, addrs,
		connection.PoolMinConnections(0),
		connection.PoolReconnectWait(l.cfg.ReconnectWait),
		connection.PoolMaxReconnectWait(l.cfg.MaxReconnectWait),
		connection.PoolConnectionsFilter(func(c *connection.Connection) bool { return c.Status() == connection.StatusOnline }),
		connection.PoolErrorHandler(func(err error) {
			msg := err.Error()
			if strings.Contains(msg, "connect to") { // "failed to connect to", "failed to reconnect to"
				e.record(errConnect)
			}
			l.log.Warn("issuer link", zap.String("addr", ec.Addr), zap.String("error", pan.Scrub(msg)))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: creating pool: %w", ec.Addr, err)
	}
	return pool, nil
}

// record counts an outcome that did not go through Allow (a connect
// failure): it trips the breaker like a timeout.
func (e *endpoint) record(err error) {
	if done, aerr := e.breaker.Allow(); aerr == nil {
		done(err)
	}
}

// conn returns a signed-on connection of the endpoint that is not
// failing, or nil (the pool's round robin).
func (e *endpoint) conn() *connection.Connection {
	c, err := e.pool().Get()
	if err != nil {
		return nil
	}
	return c
}

// up is the number of signed-on connections.
func (e *endpoint) up() int {
	n := 0
	for _, c := range e.pool().Connections() {
		if c.Status() == connection.StatusOnline {
			n++
		}
	}
	return n
}

// order returns the route's endpoints in the order to try them: by
// priority (equal priorities taking turns), or all taking turns.
func (l *Link) order() []*endpoint {
	eps := l.eps.Load()
	n := len(*eps)
	if n == 1 {
		return *eps // read only: nothing to order
	}
	out := make([]*endpoint, n)
	start := int(l.turn.Add(1)-1) % max(n, 1)
	for i := range n {
		out[i] = (*eps)[(start+i)%n]
	}
	if l.Policy() == config.PolicyPriority {
		sort.SliceStable(out, func(i, j int) bool { return out[i].cfg.Priority < out[j].cfg.Priority })
	}
	return out
}

// pick chooses the endpoint and connection a request leaves on: the first
// endpoint in policy order that has a signed-on connection and whose
// breaker admits the request. done reports the outcome to that breaker;
// the caller ends the request with e.inflight.Add(-1).
// When none qualifies the request does not leave: ErrUnavailable (wrapping
// ErrBreakerOpen when breakers were why).
func (l *Link) pick() (*endpoint, *connection.Connection, func(error), error) {
	breakerOpen := false
	for _, e := range l.order() {
		// Counted before the retired check, so a retiring endpoint waits
		// for every request that got past it.
		e.inflight.Add(1)
		if e.retired.Load() {
			e.inflight.Add(-1)
			continue
		}
		c := e.conn()
		if c == nil {
			e.inflight.Add(-1)
			continue
		}
		done, err := e.breaker.Allow()
		if err != nil {
			e.inflight.Add(-1)
			breakerOpen = true
			continue
		}
		return e, c, done, nil
	}
	if breakerOpen {
		return nil, nil, nil, fmt.Errorf("%w: %w on every endpoint with a link", ErrUnavailable, ErrBreakerOpen)
	}
	return nil, nil, nil, ErrUnavailable
}

// startEndpoints connects every endpoint (one that is down keeps being
// retried in the background).
func startEndpoints(ctx context.Context, eps []*endpoint) error {
	for _, e := range eps {
		var err error
		// The pool's connections and reconnects run as goroutines it starts
		// here: they inherit the role.
		cpurole.Do(ctx, cpurole.IssuerLink, func(ctx context.Context) { err = e.pool().ConnectCtx(ctx) })
		if err != nil {
			return fmt.Errorf("endpoint %s: %w", e.cfg.Addr, err)
		}
	}
	return nil
}

// closeEndpoints signs off and closes the endpoints' links.
func closeEndpoints(ctx context.Context, eps []*endpoint) error {
	var errs []error
	for _, e := range eps {
		if err := e.pool().CloseCtx(ctx); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", e.cfg.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// EndpointStatus is one endpoint's state for the admin API and metrics.
type EndpointStatus struct {
	Addr     string `json:"addr"`
	Priority int    `json:"priority"`
	TLS      bool   `json:"tls"`
	LinksUp  int    `json:"links_up"`
	Links    int    `json:"links"`
	Breaker  string `json:"breaker"`
	Sent     uint64 `json:"sent"`
	Answered uint64 `json:"answered"`
	Timeouts uint64 `json:"timeouts"`
}

// Endpoints reports the state of each endpoint of the route.
func (l *Link) Endpoints() []EndpointStatus {
	var out []EndpointStatus
	for _, e := range *l.eps.Load() {
		out = append(out, EndpointStatus{
			Addr: e.cfg.Addr, Priority: e.cfg.Priority, TLS: e.cfg.TLS != nil,
			LinksUp: e.up(), Links: e.cfg.Links, Breaker: e.breaker.State().String(),
			Sent: e.sent.Load(), Answered: e.answered.Load(), Timeouts: e.timeouts.Load(),
		})
	}
	return out
}

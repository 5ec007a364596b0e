// Package upstream keeps the signed-on, pooled links to one issuer approval
// host and exchanges requests on them under the switch's own STAN and RRN.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/frame"
	"github.com/kbpay/switch/switch/pan"
)

// Errors Exchange returns; both are answered 91 to the terminal.
var (
	// ErrUnavailable: no signed-on link, the request was not sent.
	ErrUnavailable = errors.New("issuer unavailable: no signed-on link")
	// ErrNoAnswer: the request was sent but no answer came in time (or the
	// link dropped while waiting); the issuer may have approved it.
	ErrNoAnswer = errors.New("issuer did not answer in time")
)

// Link is the pool of connections to one issuer route.
type Link struct {
	cfg     config.IssuerRoute
	spec    *iso8583.MessageSpec
	codec   *frame.Codec
	pool    *connection.Pool
	log     *zap.Logger
	metrics *Metrics
	stan    atomic.Uint32
	onLate  func(route string, msg *iso8583.Message)
}

// Option adjusts a Link.
type Option func(*Link)

// WithLateResponseHandler is called with an issuer response that arrived
// after its request had timed out (a late approval must be reversed).
func WithLateResponseHandler(h func(route string, msg *iso8583.Message)) Option {
	return func(l *Link) { l.onLate = h }
}

// New builds the link for one route; Start connects it.
func New(cfg config.IssuerRoute, log *zap.Logger, m *Metrics, opts ...Option) (*Link, error) {
	spec, err := specs.Load(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", cfg.Name, err)
	}
	h, err := frame.ParseHeader(cfg.Header)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", cfg.Name, err)
	}
	l := &Link{
		cfg:     cfg,
		spec:    spec,
		codec:   &frame.Codec{Header: h, MaxLength: cfg.MaxFrame, Spec: spec, WriteTimeout: cfg.Timeout},
		log:     log.With(zap.String("route", cfg.Name)),
		metrics: m,
	}
	for _, o := range opts {
		o(l)
	}
	// Start the STAN sequence somewhere new each run so a restart does not
	// reuse the STANs of requests the issuer may still be answering.
	l.stan.Store(uint32(time.Now().UnixNano() % 999999))
	l.pool, err = connection.NewPool(l.dial, cfg.Addrs,
		connection.PoolMinConnections(0),
		connection.PoolReconnectWait(cfg.ReconnectWait),
		connection.PoolMaxReconnectWait(cfg.MaxReconnectWait),
		connection.PoolConnectionsFilter(func(c *connection.Connection) bool { return c.Status() == connection.StatusOnline }),
		connection.PoolErrorHandler(func(err error) { l.log.Warn("issuer link", zap.String("error", pan.Scrub(err.Error()))) }),
	)
	if err != nil {
		return nil, fmt.Errorf("route %s: creating pool: %w", cfg.Name, err)
	}
	m.register(cfg.Name, l)
	return l, nil
}

// Name is the route name.
func (l *Link) Name() string { return l.cfg.Name }

// Spec is the issuer dialect.
func (l *Link) Spec() *iso8583.MessageSpec { return l.spec }

// Start connects every link of the pool. An issuer that is down is not an
// error: the pool keeps reconnecting with back-off and requests meanwhile
// get ErrUnavailable.
func (l *Link) Start(ctx context.Context) error {
	return l.pool.ConnectCtx(ctx)
}

// Close signs off and closes every link.
func (l *Link) Close(ctx context.Context) error {
	return l.pool.CloseCtx(ctx)
}

// Up is the number of signed-on links.
func (l *Link) Up() int {
	n := 0
	for _, c := range l.pool.Connections() {
		if c.Status() == connection.StatusOnline {
			n++
		}
	}
	return n
}

// NextSTAN returns the route's next STAN (000001-999999, wrapping). STANs
// are unique per route among outstanding requests, whatever the terminals'
// own STANs are.
func (l *Link) NextSTAN() string {
	for {
		old := l.stan.Load()
		next := old%999999 + 1
		if l.stan.CompareAndSwap(old, next) {
			return fmt.Sprintf("%06d", next)
		}
	}
}

// RRN builds a retrieval reference number: YDDDhh (last digit of the year,
// day of year, hour) and the six-digit issuer STAN.
func RRN(now time.Time, stan string) string {
	return fmt.Sprintf("%d%03d%02d%s", now.Year()%10, now.YearDay(), now.Hour(), stan)
}

// Assign gives the request a route STAN (DE 11) and, when DE 37 is empty,
// an RRN, so they can be journaled before the request leaves.
func (l *Link) Assign(req *iso8583.Message) error {
	stan := l.NextSTAN()
	if err := req.Field(specs.STAN, stan); err != nil {
		return fmt.Errorf("setting issuer STAN: %w", err)
	}
	if f := req.GetField(specs.RRN); f == nil {
		if err := req.Field(specs.RRN, RRN(time.Now(), stan)); err != nil {
			return fmt.Errorf("setting RRN: %w", err)
		}
	}
	return nil
}

// Exchange sends the request on a signed-on link (assigning STAN and RRN
// first unless Assign did) and waits for the answer up to the route
// timeout (or ctx's deadline when sooner).
func (l *Link) Exchange(ctx context.Context, req *iso8583.Message) (*iso8583.Message, error) {
	conn, err := l.pool.Get()
	if err != nil {
		return nil, ErrUnavailable
	}
	if req.GetField(specs.STAN) == nil {
		if err := l.Assign(req); err != nil {
			return nil, err
		}
	}
	stan, _ := req.GetString(specs.STAN)
	timeout := l.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	start := time.Now()
	resp, err := conn.Send(req, connection.SendTimeout(timeout))
	l.metrics.upstreamLatency.WithLabelValues(l.cfg.Name).Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		return resp, nil
	case errors.Is(err, connection.ErrSendTimeout), errors.Is(err, connection.ErrConnectionClosed):
		return nil, fmt.Errorf("route %s STAN %s: %w (%v)", l.cfg.Name, stan, ErrNoAnswer, err)
	default:
		return nil, fmt.Errorf("route %s: sending request: %w", l.cfg.Name, err)
	}
}

func (l *Link) dial(addr string) (*connection.Connection, error) {
	return connection.New(addr, l.spec, nil, nil,
		connection.SetMessageReader(l.codec),
		connection.SetRequestIDGenerator(stanRequestID{}),
		connection.SetMessageWriter(l.codec),
		connection.ConnectTimeout(l.cfg.ConnectTimeout),
		connection.SendTimeout(l.cfg.Timeout),
		connection.IdleTime(l.cfg.EchoInterval),
		connection.PingHandler(l.echo),
		// No traffic at all (not even echo answers) for this long: the
		// link is dead even if TCP has not noticed.
		connection.ReadTimeout(2*l.cfg.EchoInterval+l.cfg.Timeout),
		connection.ReadTimeoutHandler(func(c *connection.Connection) {
			c.TriggerFailure(errors.New("no traffic from issuer"))
		}),
		connection.OnConnectCtx(l.signOn),
		connection.OnCloseCtx(l.signOff),
		connection.InboundMessageHandler(l.inbound),
		connection.ErrorHandler(func(err error) {
			l.log.Warn("issuer link error", zap.String("addr", addr), zap.String("error", pan.Scrub(err.Error())))
		}),
		connection.WithConnectionClosedHandler(func(c *connection.Connection) {
			c.SetStatus(connection.StatusOffline)
			l.log.Warn("issuer link closed", zap.String("addr", c.Addr()))
		}),
	)
}

func (l *Link) netMgmt(c *connection.Connection, code string, timeout time.Duration) error {
	msg := iso8583.NewMessage(l.spec)
	msg.MTI(specs.MTINetworkMgmt)
	for id, v := range map[int]string{
		specs.TransmissionDateTime: time.Now().UTC().Format("0102150405"),
		specs.STAN:                 l.NextSTAN(),
		specs.NetworkMgmtCode:      code,
	} {
		if err := msg.Field(id, v); err != nil {
			return fmt.Errorf("building 0800: %w", err)
		}
	}
	resp, err := c.Send(msg, connection.SendTimeout(timeout))
	if err != nil {
		return fmt.Errorf("0800 %s: %w", code, err)
	}
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		return fmt.Errorf("0800 %s answered %q", code, rc)
	}
	return nil
}

func (l *Link) signOn(ctx context.Context, c *connection.Connection) error {
	if err := l.netMgmt(c, specs.NetMgmtSignOn, l.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("sign-on to %s: %w", c.Addr(), err)
	}
	c.SetStatus(connection.StatusOnline)
	l.metrics.signOns.WithLabelValues(l.cfg.Name).Inc()
	l.log.Info("issuer link signed on", zap.String("addr", c.Addr()))
	return nil
}

func (l *Link) signOff(ctx context.Context, c *connection.Connection) error {
	c.SetStatus(connection.StatusOffline)
	return l.netMgmt(c, specs.NetMgmtSignOff, time.Second)
}

func (l *Link) echo(c *connection.Connection) {
	if err := l.netMgmt(c, specs.NetMgmtEcho, l.cfg.Timeout); err != nil {
		l.log.Warn("echo failed, dropping link", zap.String("addr", c.Addr()), zap.Error(err))
		c.TriggerFailure(fmt.Errorf("echo: %w", err))
	}
}

// inbound handles what the issuer sends that is not an answer we wait for:
// its own network management requests, and late answers.
func (l *Link) inbound(c *connection.Connection, msg *iso8583.Message) {
	mti, _ := msg.GetMTI()
	if mti == specs.MTINetworkMgmt {
		resp := iso8583.NewMessage(l.spec)
		rmti, _ := specs.ResponseMTI(mti)
		resp.MTI(rmti)
		for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.NetworkMgmtCode} {
			if v, err := msg.GetString(id); err == nil && v != "" {
				_ = resp.Field(id, v)
			}
		}
		_ = resp.Field(specs.ResponseCode, "00")
		if err := c.Reply(resp); err != nil {
			l.log.Warn("answering issuer 0800", zap.Error(err))
		}
		return
	}
	stan, _ := msg.GetString(specs.STAN)
	rc, _ := msg.GetString(specs.ResponseCode)
	l.metrics.lateResponses.WithLabelValues(l.cfg.Name).Inc()
	l.log.Warn("late or unmatched issuer message", zap.String("mti", mti), zap.String("stan", stan), zap.String("rc", rc))
	if l.onLate != nil {
		l.onLate(l.cfg.Name, msg)
	}
}

// stanRequestID matches answers to requests by STAN compared as a number:
// fixed numeric fields unpack without their zero padding ("000123" comes
// back as "123"), so the padded and unpadded forms must give one key.
type stanRequestID struct{}

func (stanRequestID) GenerateRequestID(m *iso8583.Message) (string, error) {
	s, err := m.GetString(specs.STAN)
	if err != nil {
		return "", fmt.Errorf("reading STAN: %w", err)
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "", errors.New("message has no STAN")
	}
	return s, nil
}

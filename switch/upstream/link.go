// Package upstream keeps the signed-on, pooled links to one issuer approval
// host and exchanges requests on them under the switch's own STAN and RRN.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/kbpay/switch/specs/codes"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// Errors Exchange returns; both are answered 91 to the terminal.
var (
	// ErrUnavailable: no signed-on link, the request was not sent.
	ErrUnavailable = errors.New("issuer unavailable: no signed-on link")
	// ErrNoAnswer: the request was sent but no answer came in time (or the
	// link dropped while waiting); the issuer may have approved it.
	ErrNoAnswer = errors.New("issuer did not answer in time")
	// ErrUnusableAnswer: an answer came for the request's MTI class and
	// STAN but does not belong to it (DE 7 or DE 37 differ) or cannot be
	// read. The outcome is unknown, as with no answer; it wraps ErrNoAnswer.
	ErrUnusableAnswer = fmt.Errorf("unusable issuer answer: %w", ErrNoAnswer)
)

// RRNSource hands out retrieval reference numbers (DE 37) unique across
// the switch; the switch passes its durable per-instance sequence.
type RRNSource func() (string, error)

// Link is one issuer route: the pooled connections to each of its
// endpoints, chosen by the route's policy past open circuit breakers.
type Link struct {
	cfg     config.IssuerRoute
	spec    *iso8583.MessageSpec
	codec   *frame.Codec
	eps     atomic.Pointer[[]*endpoint]
	turn    atomic.Uint32 // round robin over endpoints
	policy  atomic.Pointer[string]
	log     *zap.Logger
	metrics *Metrics
	stans   *stanPool
	rrns    RRNSource
	onLate  func(route string, msg *iso8583.Message)
	keys    func() hsm.HSM // WithKeyExchange: imports issuers' zone PIN keys
	shared  keyShare       // WithKeyStore: key changes shared through the store (keyshare.go)
	clock   Clock          // key-change schedule (keyschedule.go)
	sched   *keySchedule
	// closing is set by Close: links closing then are the shutdown, not a
	// fault, and are logged at info.
	closing atomic.Bool
}

// Option adjusts a Link.
type Option func(*Link)

// WithLateResponseHandler is called with an issuer response that arrived
// after its request had timed out (a late approval must be reversed).
func WithLateResponseHandler(h func(route string, msg *iso8583.Message)) Option {
	return func(l *Link) { l.onLate = h }
}

// WithRRNs sets where the link takes DE 37 for requests that carry none.
// Without it, RRNs come from a process-local counter (unique only within
// the process: for tests and tools, never for the switch).
func WithRRNs(src RRNSource) Option {
	return func(l *Link) { l.rrns = src }
}

// WithFirstSTAN makes the route's first STAN the one after n (default: a
// clock reading, so a restart does not start where the last run did).
func WithFirstSTAN(n uint32) Option {
	return func(l *Link) { l.stans = newSTANPool(n) }
}

// New builds the link for one route; Start connects it.
func New(cfg config.IssuerRoute, log *zap.Logger, m *Metrics, opts ...Option) (*Link, error) {
	cfg = cfg.WithLinkDefaults()
	spec, h, err := frame.LoadDialect(cfg.Spec, cfg.Header)
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
	// reuse the STANs of requests the issuer may still be answering (the
	// STANs pending store-and-forward items repeat are held explicitly).
	if l.stans == nil {
		l.stans = newSTANPool(uint32(time.Now().UnixNano() % maxSTAN))
	}
	if l.rrns == nil {
		l.rrns = localRRNs()
	}
	var eps []*endpoint
	for _, ec := range cfg.EndpointList() {
		e, err := l.newEndpoint(ec)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", cfg.Name, err)
		}
		eps = append(eps, e)
	}
	l.eps.Store(&eps)
	l.policy.Store(&cfg.Policy)
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
	if err := startEndpoints(ctx, *l.eps.Load()); err != nil {
		return err
	}
	l.startKeySchedule()
	return nil
}

// Close signs off and closes every link.
func (l *Link) Close(ctx context.Context) error {
	l.closing.Store(true)
	l.stopKeySchedule()
	l.metrics.unregister(l.cfg.Name, l)
	return closeEndpoints(ctx, *l.eps.Load())
}

// Up is the number of signed-on links over all endpoints.
func (l *Link) Up() int {
	n := 0
	for _, e := range *l.eps.Load() {
		n += e.up()
	}
	return n
}

// Assign gives the request a STAN (DE 11) that no request in flight and
// no pending give-back of this route holds, and, when DE 37 is empty, an
// RRN, so both can be journaled before the request leaves. The STAN is
// owned until Exchange ends (or Abandon, for a request that is not sent).
func (l *Link) Assign(req *iso8583.Message) error {
	stan, err := l.stans.acquire()
	if err != nil {
		return fmt.Errorf("route %s: %w", l.cfg.Name, err)
	}
	if err := fields.SetString(req, specs.STAN, stan); err != nil {
		l.stans.release(stan)
		return fmt.Errorf("setting issuer STAN: %w", err)
	}
	if f := req.GetField(specs.RRN); f == nil {
		rrn, err := l.rrns()
		if err == nil {
			err = fields.SetString(req, specs.RRN, rrn)
		}
		if err != nil {
			l.stans.release(stan)
			return fmt.Errorf("setting RRN: %w", err)
		}
	}
	return nil
}

// Abandon gives up the STAN Assign gave req when req will not be sent.
func (l *Link) Abandon(req *iso8583.Message) {
	stan, _ := req.GetString(specs.STAN)
	l.stans.release(stan)
}

// PartitionSTANs makes the route hand out only the STANs n with
// n mod parts == part: instances sharing a store never send the same DE 11
// to an issuer. Call it before Start.
func (l *Link) PartitionSTANs(part, parts int) { l.stans.partition(uint32(part), uint32(parts)) }

// Hold keeps stan owned for a pending give-back that will repeat it (and
// Release lets it go once the give-back is settled): no new request of
// the route gets that STAN meanwhile.
func (l *Link) Hold(stan string) { l.stans.hold(stan) }

// Release ends one Hold of stan.
func (l *Link) Release(stan string) { l.stans.release(stan) }

// STANsInUse is how many of the route's STANs are owned.
func (l *Link) STANsInUse() int { return l.stans.inUse() }

// quarantine is how long the STAN of an unanswered request stays owned: a
// late answer with it must not match a newer request.
func (l *Link) quarantine() time.Duration {
	if l.cfg.STANQuarantine > 0 {
		return l.cfg.STANQuarantine
	}
	return max(2*l.cfg.Timeout, 30*time.Second)
}

// Exchange sends the request on a signed-on link (assigning STAN and RRN
// first unless Assign did) and waits for the answer up to the route
// timeout (or ctx's deadline when sooner).
//
// The answer must be the request's response MTI with its DE 11; when it
// carries DE 7 or DE 37 they must be the request's. Anything else after
// the request left is an unknown outcome (ErrNoAnswer, ErrUnusableAnswer):
// the caller reverses, never retries elsewhere. ErrUnavailable means the
// request did not leave. The request leaves on the first endpoint in the
// route's policy order that has a signed-on link and whose circuit
// breaker admits it; while every such breaker is open it does not leave
// (ErrUnavailable wrapping ErrBreakerOpen, at once).
func (l *Link) Exchange(ctx context.Context, req *iso8583.Message) (*iso8583.Message, error) {
	if req.GetField(specs.STAN) == nil {
		if err := l.Assign(req); err != nil {
			return nil, err
		}
	}
	stan, _ := req.GetString(specs.STAN)
	ep, conn, done, err := l.pick()
	if err != nil {
		l.stans.release(stan)
		return nil, err
	}
	defer ep.inflight.Add(-1)
	ep.sent.Add(1)
	timeout := l.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	start := time.Now()
	resp, err := l.send(conn, req, timeout)
	if err == nil {
		// The endpoint answered: alive, even if the answer is unusable.
		ep.answered.Add(1)
		done(nil)
		err = matches(req, resp)
	} else {
		ep.timeouts.Add(1)
		done(err)
	}
	l.metrics.upstreamLatency.WithLabelValues(l.cfg.Name, exchangeOutcome(err)).Observe(time.Since(start).Seconds())
	if err == nil {
		l.stans.release(stan)
		return resp, nil
	}
	// The request may have left: its STAN stays owned while a late
	// answer can still come.
	time.AfterFunc(l.quarantine(), func() { l.stans.release(stan) })
	switch {
	case errors.Is(err, ErrNoAnswer):
		l.metrics.lateResponses.WithLabelValues(l.cfg.Name).Inc()
		return nil, fmt.Errorf("route %s STAN %s: %w", l.cfg.Name, stan, err)
	case errors.Is(err, connection.ErrSendTimeout), errors.Is(err, connection.ErrConnectionClosed):
		return nil, fmt.Errorf("route %s STAN %s: %w (%v)", l.cfg.Name, stan, ErrNoAnswer, err)
	default:
		// Whether the request left is not known: treat it as unanswered.
		return nil, fmt.Errorf("route %s STAN %s: sending request: %w (%v)", l.cfg.Name, stan, ErrNoAnswer, err)
	}
}

// send is the exchange on the connection's wire (see wire).
func (l *Link) send(c *connection.Connection, req *iso8583.Message, timeout time.Duration) (*iso8583.Message, error) {
	w := wireOf(c)
	if w == nil {
		return nil, fmt.Errorf("connection to %s has no wire", c.Addr())
	}
	return w.exchange(c, req, timeout)
}

// reply answers the issuer's request req on c's wire, echoing the
// network header req came with (a TPDU, swapped).
func (l *Link) reply(c *connection.Connection, req, resp *iso8583.Message) error {
	l.codec.Answering(resp, l.codec.TakeHeader(req))
	if w := wireOf(c); w != nil {
		return w.write(c, resp)
	}
	return c.Reply(resp)
}

// matches checks that resp answers req: the response MTI of req's class,
// the same DE 11 and, where resp carries them, the same DE 7 and DE 37.
func matches(req, resp *iso8583.Message) error {
	reqMTI, _ := req.GetMTI()
	want, _ := specs.ResponseMTI(reqMTI)
	if got, _ := resp.GetMTI(); got != want {
		return fmt.Errorf("%w: MTI %s answers %s", ErrUnusableAnswer, got, reqMTI)
	}
	for _, id := range []int{specs.STAN, specs.TransmissionDateTime, specs.RRN} {
		if resp.GetField(id) == nil || req.GetField(id) == nil {
			if id == specs.STAN {
				return fmt.Errorf("%w: no DE 11", ErrUnusableAnswer)
			}
			continue
		}
		a, _ := req.GetString(id)
		b, _ := resp.GetString(id)
		if normalize(a) != normalize(b) {
			return fmt.Errorf("%w: DE %d differs from the request's", ErrUnusableAnswer, id)
		}
	}
	return nil
}

// normalize drops the padding a dialect may add or strip (zeros on the
// left of numeric fields, spaces around text).
func normalize(s string) string {
	return strings.TrimLeft(strings.TrimSpace(s), "0")
}

func (l *Link) dial(addr string, tlsCfg *tls.Config) (*connection.Connection, error) {
	var tlsOpt []connection.Option
	if tlsCfg != nil {
		tlsOpt = append(tlsOpt, connection.SetTLSConfig(func(c *tls.Config) {
			c.MinVersion, c.ServerName, c.RootCAs = tlsCfg.MinVersion, tlsCfg.ServerName, tlsCfg.RootCAs
			c.GetClientCertificate = tlsCfg.GetClientCertificate
		}))
	}
	w := newWire(l.codec)
	// The library's read timer only sees what the wire does not take (the
	// answers go to their requests), so it ticks more often and the
	// handler judges by the wire's own last read.
	noTraffic := 2*l.cfg.EchoInterval + l.cfg.Timeout
	return connection.New(addr, l.spec, nil, nil, append(tlsOpt,
		connection.SetMessageReader(w),
		connection.SetRequestIDGenerator(stanRequestID{}),
		connection.SetMessageWriter(w.out),
		connection.ConnectTimeout(l.cfg.ConnectTimeout),
		connection.SendTimeout(l.cfg.Timeout),
		connection.IdleTime(l.cfg.EchoInterval),
		connection.PingHandler(l.echo),
		// No traffic at all (not even echo answers) for this long: the
		// link is dead even if TCP has not noticed.
		connection.ReadTimeout(max(noTraffic/4, time.Millisecond)),
		connection.ReadTimeoutHandler(func(c *connection.Connection) {
			if w.idleFor() >= noTraffic {
				c.TriggerFailure(errors.New("no traffic from issuer"))
			}
		}),
		connection.OnConnectCtx(l.signOn),
		connection.OnCloseCtx(l.signOff),
		connection.InboundMessageHandler(l.inbound),
		connection.ErrorHandler(func(err error) {
			l.log.Warn("issuer link error", zap.String("addr", addr), zap.String("error", pan.Scrub(err.Error())))
		}),
		connection.WithConnectionClosedHandler(func(c *connection.Connection) {
			c.SetStatus(connection.StatusOffline)
			if l.closing.Load() {
				l.log.Info("issuer link closed (shutdown)", zap.String("addr", c.Addr()))
				return
			}
			l.log.Warn("issuer link closed", zap.String("addr", c.Addr()))
		}),
	)...)
}

func (l *Link) netMgmt(c *connection.Connection, code string, timeout time.Duration) error {
	stan, err := l.stans.acquire()
	if err != nil {
		return fmt.Errorf("0800 %s: %w", code, err)
	}
	defer l.stans.release(stan)
	msg := iso8583.NewMessage(l.spec)
	msg.MTI(specs.MTINetworkMgmt)
	for id, v := range map[int]string{
		specs.TransmissionDateTime: time.Now().UTC().Format("0102150405"),
		specs.STAN:                 stan,
		specs.NetworkMgmtCode:      code,
	} {
		if err := msg.Field(id, v); err != nil {
			return fmt.Errorf("building 0800: %w", err)
		}
	}
	resp, err := l.send(c, msg, timeout)
	if err != nil {
		return fmt.Errorf("0800 %s: %w", code, err)
	}
	if rc, _ := resp.GetString(specs.ResponseCode); codes.Code(rc) != codes.Approved {
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
	// The library pings when it wrote nothing for the echo interval, but
	// requests leave through the wire: not idle if they did.
	if w := wireOf(c); w != nil && w.wroteWithin(l.cfg.EchoInterval) {
		return
	}
	if err := l.netMgmt(c, specs.NetMgmtEcho, l.cfg.Timeout); err != nil {
		l.log.Warn("echo failed, dropping link", zap.String("addr", c.Addr()), zap.Error(err))
		c.TriggerFailure(fmt.Errorf("echo: %w", err))
	}
}

// inbound handles what the issuer sends that is not an answer we wait for:
// its own network management requests, and late answers. An issuer's
// sign-off (0800, DE 70 002) takes the link out of service until the
// issuer signs on again (0800 001): nothing is sent on it meanwhile.
func (l *Link) inbound(c *connection.Connection, msg *iso8583.Message) {
	mti, _ := msg.GetMTI()
	if mti == specs.MTINetworkMgmt {
		code, _ := msg.GetString(specs.NetworkMgmtCode)
		defer func() {
			switch fmt.Sprintf("%03s", code) {
			case specs.NetMgmtSignOff:
				c.SetStatus(connection.StatusOffline)
				l.log.Warn("issuer signed off: link out of service until it signs on", zap.String("addr", c.Addr()))
			case specs.NetMgmtSignOn:
				c.SetStatus(connection.StatusOnline)
				l.log.Info("issuer signed on", zap.String("addr", c.Addr()))
			}
		}()
		resp := iso8583.NewMessage(l.spec)
		rmti, _ := specs.ResponseMTI(mti)
		resp.MTI(rmti)
		for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.NetworkMgmtCode} {
			if v, err := msg.GetString(id); err == nil && v != "" {
				_ = resp.Field(id, v)
			}
		}
		// Only what the switch does is acknowledged: a key change (161)
		// it cannot apply is refused, so the issuer keeps the old key.
		rc := codes.Approved
		switch fmt.Sprintf("%03s", code) {
		case specs.NetMgmtSignOn, specs.NetMgmtSignOff, specs.NetMgmtEcho:
		case specs.NetMgmtKeyChange:
			rc = l.keyChange(msg)
		default:
			rc = codes.InvalidTxn
			l.log.Warn("issuer 0800 refused: function not supported", zap.String("addr", c.Addr()), zap.String("code", code))
		}
		_ = resp.Field(specs.ResponseCode, string(rc))
		if err := l.reply(c, msg, resp); err != nil {
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

// stanRequestID matches answers to requests by the response MTI and the
// STAN compared as a number: a request's key is its response MTI, so an
// 0430 never answers an 0200 that happens to share its STAN. Fixed numeric
// fields unpack without their zero padding ("000123" comes back as "123"),
// so the padded and unpadded forms must give one key.
type stanRequestID struct{}

func (stanRequestID) GenerateRequestID(m *iso8583.Message) (string, error) {
	mti, err := m.GetMTI()
	if err != nil {
		return "", fmt.Errorf("reading MTI: %w", err)
	}
	if specs.IsRequest(mti) {
		mti, _ = specs.ResponseMTI(mti)
	}
	s, err := m.GetString(specs.STAN)
	if err != nil {
		return "", fmt.Errorf("reading STAN: %w", err)
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "", errors.New("message has no STAN")
	}
	return mti + "/" + s, nil
}

// localRRNs is the fallback RRN source: "99" and a ten-digit counter
// started from the clock, unique within this process only.
func localRRNs() RRNSource {
	var n atomic.Uint64
	n.Store(uint64(time.Now().UnixNano()/1000) % 1e10)
	return func() (string, error) {
		return fmt.Sprintf("99%010d", n.Add(1)%1e10), nil
	}
}

// exchangeOutcome names an exchange's result for the latency metric.
func exchangeOutcome(err error) string {
	switch {
	case err == nil:
		return OutcomeAnswered
	case errors.Is(err, connection.ErrSendTimeout):
		return OutcomeTimedOut
	}
	return OutcomeError
}

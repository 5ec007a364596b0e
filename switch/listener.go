package payswitch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"github.com/moov-io/iso8583/utils"
	"go.uber.org/zap"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/frame"
	"github.com/kbpay/switch/switch/pan"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/tlsconf"
	"github.com/kbpay/switch/switch/txnlog"
)

// replyTimeout bounds writing one answer to a terminal that stops reading.
const replyTimeout = 10 * time.Second

// listener accepts terminal or VAN connections and serves each request on
// them concurrently through the switch pipeline.
type listener struct {
	cfg    config.Listener
	spec   *iso8583.MessageSpec
	header frame.Header
	sw     *Switch
	log    *zap.Logger
	ln     net.Listener

	// limits is the per-terminal rate limit: applied before the pipeline
	// on an unkeyed listener, after MAC verification on a keyed one.
	limits *pipeline.TerminalLimits
	// policy is what the listener decides for every request (its keys,
	// limits, DE 55 cap), carried by each Txn.
	policy pipeline.ListenerPolicy
	// tls is the listener's TLS material (nil: plain TCP).
	tls *tlsconf.Server
	// maxConns and maxInFlight are cfg's limits as a reload sets them.
	maxConns, maxInFlight atomic.Int64
	// signedOn counts the connections signed on (listener_van.go).
	signedOn atomic.Int64
	// signOffSTAN numbers the switch's own 0800 sign-offs at shutdown.
	signOffSTAN atomic.Int64

	mu    sync.Mutex
	conns map[*connection.Connection]*vanLink
	count atomic.Int64
	wg    sync.WaitGroup // accept loop and open connections
}

func newListener(cfg config.Listener, sw *Switch) (*listener, error) {
	spec, err := specs.Load(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	h, err := frame.ParseHeader(cfg.Header)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	l := &listener{
		cfg: cfg, spec: spec, header: h, sw: sw,
		log:    sw.log.With(zap.String("listener", cfg.Name)),
		limits: pipeline.NewTerminalLimits(cfg.RatePerTerminal),
		conns:  map[*connection.Connection]*vanLink{},
	}
	l.policy = listenerPolicy(cfg, l.limits)
	l.maxConns.Store(int64(cfg.MaxConnections))
	l.maxInFlight.Store(int64(cfg.MaxInFlight))
	if cfg.TLS != nil {
		if l.tls, err = tlsconf.NewServer(*cfg.TLS); err != nil {
			return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
		}
	}
	return l, nil
}

// keyed reports a listener whose terminals MAC their requests.
func (l *listener) keyed() bool { return l.cfg.MAC != nil }

func (l *listener) listen() error {
	ln, err := net.Listen("tcp", l.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
	}
	l.ln = ln
	l.wg.Add(1)
	go l.acceptLoop()
	l.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("spec", l.cfg.Spec), zap.String("header", l.cfg.Header), zap.Bool("tls", l.tls != nil))
	return nil
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			l.log.Warn("accept failed", zap.Error(err))
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if l.count.Load() >= l.maxConns.Load() {
			l.sw.metrics.refused.WithLabelValues(l.cfg.Name, "max_connections").Inc()
			l.log.Warn("connection refused: max_connections reached", zap.String("remote", nc.RemoteAddr().String()))
			_ = nc.Close()
			continue
		}
		if l.tls != nil {
			l.wg.Add(1)
			go l.serveTLS(nc, l.tls)
			continue
		}
		if err := l.serveConn(nc); err != nil {
			l.log.Warn("starting connection", zap.Error(err))
			_ = nc.Close()
		}
	}
}

// serveConn wraps one socket in an iso8583-connection Connection whose
// inbound handler runs the pipeline for each request.
func (l *listener) serveConn(nc net.Conn) error {
	remote := nc.RemoteAddr().String()
	log := l.log.With(zap.String("remote", remote))
	link := newVANLink(l.cfg)
	// out writes every answer of the connection (and the library's own
	// writes), the ones ready together in one write.
	var out *frame.Writer
	codec := &frame.Codec{
		Header: l.header, MaxLength: l.cfg.MaxFrame, Spec: l.spec, WriteTimeout: replyTimeout,
		KeepRaw: l.keyed(),
		Conn:    nc, FrameTimeout: l.cfg.FrameTimeout,
		OnUndecodable: func(ue *frame.UndecodableError) {
			l.formatError(out, ue, log)
		},
	}
	out = frame.NewWriter(codec, nc)
	l.count.Add(1)
	l.wg.Add(1)
	l.sw.metrics.connections.WithLabelValues(l.cfg.Name).Inc()
	c, err := connection.NewFrom(nc, l.spec, nil, nil,
		connection.SetMessageReader(codec),
		connection.SetMessageWriter(out),
		connection.SetRequestIDGenerator(&inboundIDs{}),
		connection.SendTimeout(replyTimeout),
		connection.IdleTime(time.Hour), // the switch does not ping terminals
		connection.ReadTimeout(l.cfg.IdleTimeout),
		connection.ReadTimeoutHandler(func(c *connection.Connection) {
			l.sw.metrics.frameErrors.WithLabelValues(l.cfg.Name, "idle").Inc()
			log.Info("closing idle connection", zap.Duration("idle_timeout", l.cfg.IdleTimeout))
			go c.Close()
		}),
		connection.InboundMessageHandler(func(c *connection.Connection, msg *iso8583.Message) {
			l.serveMessage(out, msg, codec.TakeRaw(msg), link, log)
		}),
		connection.ErrorHandler(func(err error) {
			if peerClosed(err) {
				log.Debug("connection closed by the terminal")
				return
			}
			l.sw.metrics.frameErrors.WithLabelValues(l.cfg.Name, inputErrorReason(err)).Inc()
			log.Warn("closing connection on bad input", zap.String("reason", unsafeReason(err)))
		}),
		connection.WithConnectionClosedHandler(func(c *connection.Connection) {
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
			l.count.Add(-1)
			l.sw.metrics.connections.WithLabelValues(l.cfg.Name).Dec()
			l.linkClosed(link)
			log.Debug("connection closed")
			l.wg.Done()
		}),
	)
	if err != nil {
		l.count.Add(-1)
		l.wg.Done()
		l.sw.metrics.connections.WithLabelValues(l.cfg.Name).Dec()
		return fmt.Errorf("wrapping connection from %s: %w", remote, err)
	}
	l.mu.Lock()
	l.conns[c] = link
	l.mu.Unlock()
	log.Debug("connection accepted")
	return nil
}

// inboundIDs gives every message read on a listener its own ID. A
// listener sends no requests, so no answer is ever pending: with an ID
// that cannot fail (moov's default needs DE 11) every message, answer-class
// or not, reaches the inbound handler, which serves or counts it, instead
// of the connection dropping it.
type inboundIDs struct{ n atomic.Uint64 }

func (g *inboundIDs) GenerateRequestID(m *iso8583.Message) (string, error) {
	if id, ok := netMgmtID(m); ok { // the switch's own 0800 sign-off and its 0810
		return id, nil
	}
	return "inbound-" + strconv.FormatUint(g.n.Add(1), 10), nil
}

// peerClosed reports a terminal that hung up between messages (or a
// socket we closed ourselves): the normal end of a connection.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}

// unsafeReason unwraps moov's SafeError (whose message hides the cause) and
// scrubs card-like digit runs from the full text.
func unsafeReason(err error) string {
	var se *utils.SafeError
	if errors.As(err, &se) {
		return pan.Scrub(se.UnsafeError())
	}
	return pan.Scrub(err.Error())
}

func inputErrorReason(err error) string {
	var ue *frame.UndecodableError
	switch {
	case errors.As(err, &ue):
		return "undecodable"
	case errors.Is(err, frame.ErrZeroLength):
		return "zero_length"
	case errors.Is(err, frame.ErrTooLong):
		return "too_long"
	case errors.Is(err, frame.ErrBadHeader):
		return "bad_header"
	case errors.Is(err, frame.ErrSlowFrame):
		return "slow_frame"
	}
	return "read_error"
}

// serveMessage runs one terminal request through the pipeline and replies.
func (l *listener) serveMessage(c *frame.Writer, msg *iso8583.Message, raw []byte, link *vanLink, log *zap.Logger) {
	start := time.Now()
	mti, _ := msg.GetMTI()
	if !specs.IsRequest(mti) {
		l.sw.metrics.frameErrors.WithLabelValues(l.cfg.Name, "unexpected_response").Inc()
		log.Warn("ignoring a non-request message from a terminal", zap.String("mti", mtiLabel(mti)))
		return
	}
	t := &pipeline.Txn{Listener: l.cfg.Name, Policy: l.policy, Received: start, Request: msg, MTI: mti, Raw: raw}
	// A keyed listener limits in the pipeline, once the MAC verified: DE 41
	// of a request nobody authenticated yet must not spend a terminal's
	// allowance.
	if tid, _ := msg.GetString(specs.TerminalID); !l.keyed() && !l.limits.Allow(tid) {
		l.sw.refusedOverRate(l.cfg.Name)
		t.Code, t.Reason = codes.IssuerUnavailable, pipeline.ReasonRateLimit
		l.reply(c, t, start, t.Reason, log)
		return
	}
	if !l.admit(link, t) { // VAN link: signed on, within its rate (listener_van.go)
		l.reply(c, t, start, t.Reason, log)
		return
	}
	if n := link.inFlight.Add(1); n > l.maxInFlight.Load() || !l.sw.txns.Enter() {
		link.inFlight.Add(-1)
		l.sw.metrics.refused.WithLabelValues(l.cfg.Name, "max_in_flight").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, "overloaded or draining"
		l.reply(c, t, start, t.Reason, log)
		return
	}
	defer l.sw.txns.Leave()
	defer link.inFlight.Add(-1)
	gauge := l.sw.metrics.inFlight.WithLabelValues(l.cfg.Name)
	gauge.Inc()
	defer gauge.Dec()

	err := pipeline.Process(l.sw.ctx, l.sw.dispatch, t)
	l.observe(link, t)
	l.logOutcome(t, err, log)
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	l.reply(c, t, start, reason, log)
}

// reply answers the terminal and logs the transaction's one line.
func (l *listener) reply(c *frame.Writer, t *pipeline.Txn, start time.Time, reason string, log *zap.Logger) {
	resp, err := pipeline.Respond(t)
	if err != nil {
		log.Error("building response", zap.String("error", pan.Scrub(err.Error())))
		txnlog.Write(log, t, nil, reason)
		return
	}
	defer txnlog.Write(log, t, resp, reason)
	if k := l.policy.MAC; k != nil {
		if err := pipeline.SignResponse(l.sw.ctx, l.sw.pinmac, *k, resp); err != nil {
			// Still answer: an unsigned answer beats a lost one.
			log.Error("signing response", zap.String("error", pan.Scrub(err.Error())))
		}
	}
	if err := c.Send(resp); err != nil {
		log.Warn("writing response", zap.String("stan", stanOf(t.Request)), zap.Error(err))
		return
	}
	route := t.Route
	if route == "" {
		route = "none"
	}
	mti := mtiLabel(t.MTI)
	l.sw.metrics.requests.WithLabelValues(l.cfg.Name, mti, route, rcLabel(t.Code)).Inc()
	l.sw.metrics.duration.WithLabelValues(l.cfg.Name, mti).Observe(time.Since(start).Seconds())
}

func (l *listener) logOutcome(t *pipeline.Txn, err error, log *zap.Logger) {
	var pe *pipeline.PanicError
	switch {
	case errors.As(err, &pe):
		l.sw.metrics.panics.Inc()
		log.Error("panic in pipeline, answered 96",
			zap.String("mti", t.MTI), zap.String("stan", stanOf(t.Request)), zap.String("pan", pan.Mask(t.PAN)),
			zap.String("route", t.Route), zap.String("rc", string(t.Code)),
			zap.Any("panic", pe.Value), zap.ByteString("stack", pe.Stack))
	}
	// Every transaction, declined by the switch or not, gets its info line
	// from reply (txnlog.Write).
}

// formatError answers an undecodable request with DE 39 30, echoing what
// could be read (STAN, terminal ID, ...) so the terminal can match it.
func (l *listener) formatError(c *frame.Writer, ue *frame.UndecodableError, log *zap.Logger) {
	l.sw.metrics.frameErrors.WithLabelValues(l.cfg.Name, "undecodable").Inc()
	log.Warn("undecodable message", zap.String("mti", mtiLabel(ue.MTI)), zap.String("reason", pan.Scrub(ue.Err.Error())))
	rmti, err := specs.ResponseMTI(ue.MTI)
	if err != nil {
		return // not a request: nothing to answer
	}
	resp := iso8583.NewMessage(l.spec)
	resp.MTI(rmti)
	if ue.Partial != nil {
		for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.RRN, specs.TerminalID, specs.MerchantID} {
			_ = pipeline.CopyField(resp, ue.Partial, id)
		}
	}
	_ = resp.Field(specs.ResponseCode, string(codes.FormatError))
	if err := c.Send(resp); err != nil {
		// A partial field that does not pack: answer with MTI and DE 39 only.
		bare := iso8583.NewMessage(l.spec)
		bare.MTI(rmti)
		_ = bare.Field(specs.ResponseCode, string(codes.FormatError))
		if err := c.Send(bare); err != nil {
			log.Warn("answering format error", zap.Error(err))
		}
	}
	l.sw.metrics.requests.WithLabelValues(l.cfg.Name, mtiLabel(ue.MTI), "none", string(codes.FormatError)).Inc()
}

func stanOf(m *iso8583.Message) string {
	s, _ := m.GetString(specs.STAN)
	return s
}

// stopAccepting closes the listening socket.
func (l *listener) stopAccepting() {
	if l.ln != nil {
		_ = l.ln.Close()
	}
}

// closeAll closes every open connection and waits for them to end.
func (l *listener) closeAll(ctx context.Context) {
	l.mu.Lock()
	conns := make([]*connection.Connection, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		go c.CloseCtx(ctx)
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// refusedOverRate counts a request refused by a per-terminal limit.
func (s *Switch) refusedOverRate(listener string) {
	s.metrics.refused.WithLabelValues(listener, "rate_limit").Inc()
}

// Package terminalserver serves the switch's terminal and VAN listeners: TCP (or TLS) connections whose requests it runs through the switch pipeline.
package terminalserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"github.com/moov-io/iso8583/utils"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/internal/cpurole"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/drain"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/tlsconf"
)

// replyTimeout bounds writing one answer to a terminal that stops reading.
const replyTimeout = 10 * time.Second

// Deps is what a listener needs from the switch.
type Deps struct {
	// Ctx is the switch's lifetime: requests run under it, and it ends
	// once the shutdown drained them.
	Ctx context.Context
	// Handler runs one transaction (the switch's dispatcher).
	Handler pipeline.Handler
	// PINMAC signs the answers of a keyed listener.
	PINMAC hsm.HSM
	// Txns counts the transactions in flight; the shutdown drains it.
	Txns *drain.Tracker
	// Metrics are the listener series (payswitch_requests_total, ...).
	Metrics *Metrics
	Log     *zap.Logger
}

// Listener accepts terminal or VAN connections and serves each request on
// them concurrently through the switch pipeline.
type Listener struct {
	cfg    config.Listener
	spec   *iso8583.MessageSpec
	header frame.Header
	deps   Deps
	m      *Metrics
	series *series // l.m's children of this listener, looked up once
	log    *zap.Logger
	ln     net.Listener
	// acceptDone is closed when the accept loop ended (served: it ran).
	acceptDone chan struct{}
	served     atomic.Bool
	// adopted is the listener whose socket this one took over (same
	// address, changed framing or dialect: a reload's remove and add);
	// handedOff marks the old one, whose accept loop then ends without
	// closing the socket.
	adopted   *Listener
	handedOff atomic.Bool

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
	// signedOn counts the connections signed on (van.go).
	signedOn atomic.Int64
	// signOffSTAN numbers the switch's own 0800 sign-offs.
	signOffSTAN atomic.Int64
	// retiring: a reload removed the listener; its requests are refused
	// and its connections close once their in-flight requests are answered.
	retiring atomic.Bool

	// workers serve the requests of every connection (workers.go).
	workers *workers

	mu    sync.Mutex
	conns map[*connection.Connection]*vanLink
	// closing (under mu): CloseAll ran; like retiring, no connection
	// registers any more.
	closing bool
	count   atomic.Int64
	wg      sync.WaitGroup // accept loop, TLS handshakes and open connections

	// beforeRegister, when set (tests), runs between wrapping a
	// connection and entering it in conns.
	beforeRegister func()
}

// New builds the listener of cfg.
func New(cfg config.Listener, deps Deps) (*Listener, error) {
	spec, h, err := frame.LoadDialect(cfg.Spec, cfg.Header)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	l := &Listener{
		cfg: cfg, spec: spec, header: h, deps: deps, m: deps.Metrics,
		log:        deps.Log.With(zap.String("listener", cfg.Name)),
		limits:     pipeline.NewTerminalLimits(cfg.RatePerTerminal),
		conns:      map[*connection.Connection]*vanLink{},
		acceptDone: make(chan struct{}),
	}
	l.policy = policy(cfg, l.limits)
	l.workers = newWorkers(func(r request) { l.serveMessage(r.out, r.msg, r.raw, r.link, r.log) })
	l.series = newSeries(deps.Metrics, cfg.Name)
	l.maxConns.Store(int64(cfg.MaxConnections))
	l.maxInFlight.Store(int64(cfg.MaxInFlight))
	if cfg.TLS != nil {
		if l.tls, err = tlsconf.NewServer(*cfg.TLS); err != nil {
			return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
		}
	}
	return l, nil
}

// policy is what lc decides for every request (its MAC key, PIN source,
// DE 55 cap, limits): resolved once, when the listener is built, and
// carried by each Txn.
func policy(lc config.Listener, limits *pipeline.TerminalLimits) pipeline.ListenerPolicy {
	p := pipeline.ListenerPolicy{Instrument: pipeline.InstrumentCard, MaxICC: lc.MaxICCData}
	if lc.MAC != nil {
		p.MAC = &pipeline.MACKey{Key: lc.MAC.Key, Algorithm: hsm.MACAlgorithm(lc.MAC.Algorithm)}
		// A keyed listener limits in the pipeline, once the MAC verified.
		p.Limits = limits
	}
	if lc.PIN != nil {
		p.PIN = &pipeline.PINSource{Key: lc.PIN.Key, Format: hsm.PINFormat(lc.PIN.Format), DUKPT: lc.PIN.DUKPT}
	}
	return p
}

// Name is the listener's configured name.
func (l *Listener) Name() string { return l.cfg.Name }

// Config is the listener's configuration as built.
func (l *Listener) Config() config.Listener { return l.cfg }

// TLS reports a listener serving TLS.
func (l *Listener) TLS() bool { return l.tls != nil }

// Connections is the number of open connections.
func (l *Listener) Connections() int64 { return l.count.Load() }

// Addr is the bound address ("" before Bind).
func (l *Listener) Addr() string {
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Reconfigure applies what a reload changes on a running listener: lc's
// limits and, on a TLS listener, the TLS material srv. It reports whether
// anything changed.
func (l *Listener) Reconfigure(lc config.Listener, srv *tlsconf.Server) bool {
	changed := int64(lc.MaxConnections) != l.maxConns.Load() || int64(lc.MaxInFlight) != l.maxInFlight.Load() || srv != nil
	if srv != nil && l.tls != nil {
		l.tls.Adopt(srv)
	}
	l.maxConns.Store(int64(lc.MaxConnections))
	l.maxInFlight.Store(int64(lc.MaxInFlight))
	return changed
}

// keyed reports a listener whose terminals MAC their requests.
func (l *Listener) keyed() bool { return l.cfg.MAC != nil }

// Bind takes the listener's address (a port in use fails here, before
// anything is served); Serve starts accepting on it.
func (l *Listener) Bind() error {
	ln, err := net.Listen("tcp", l.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
	}
	l.ln = ln
	return nil
}

// BindOrAdopt is Bind, except that when old (the listener of the same
// name a reload replaces) serves the same fixed address, the new one takes
// over its socket at Serve instead: no connect is refused in between.
func (l *Listener) BindOrAdopt(old *Listener) error {
	if old == nil || old.cfg.Addr != l.cfg.Addr || old.ln == nil || strings.HasSuffix(l.cfg.Addr, ":0") {
		return l.Bind()
	}
	l.ln, l.adopted = old.ln, old
	return nil
}

// Discard closes the socket of a listener bound but never served (a
// refused reload); an adopted socket stays its old listener's.
func (l *Listener) Discard() {
	if l.adopted == nil {
		l.StopAccepting()
	}
}

// handOff ends the accept loop without closing the socket, for the
// listener that adopted it.
func (l *Listener) handOff() {
	l.handedOff.Store(true)
	if d, ok := l.ln.(interface{ SetDeadline(time.Time) error }); ok {
		_ = d.SetDeadline(time.Now())
	}
	if l.served.Load() {
		<-l.acceptDone
	}
}

// Serve accepts connections on the bound address.
func (l *Listener) Serve() {
	if old := l.adopted; old != nil {
		old.handOff()
		if d, ok := l.ln.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Time{})
		}
	}
	l.served.Store(true)
	l.wg.Add(1)
	go l.acceptLoop()
	l.log.Info("listening", zap.String("addr", l.Addr()), zap.String("spec", l.cfg.Spec), zap.String("header", l.cfg.Header), zap.Bool("tls", l.tls != nil))
}

// Listen is Bind then Serve.
func (l *Listener) Listen() error {
	if err := l.Bind(); err != nil {
		return err
	}
	l.Serve()
	return nil
}

func (l *Listener) acceptLoop() {
	cpurole.Set(cpurole.TerminalConn) // the connections it accepts inherit it
	defer l.wg.Done()
	defer close(l.acceptDone)
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.handedOff.Load() || errors.Is(err, net.ErrClosed) {
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
			l.m.Refused.WithLabelValues(l.cfg.Name, "max_connections").Inc()
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

// errClosing refuses a connection that completes once the listener is
// being removed by a reload or closed by the shutdown.
var errClosing = errors.New("listener closing")

// serveConn wraps one socket in an iso8583-connection Connection whose
// inbound handler runs the pipeline for each request.
func (l *Listener) serveConn(nc net.Conn) error {
	remote := nc.RemoteAddr().String()
	log := l.log.With(zap.String("remote", remote))
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
	link := newVANLink(l.cfg, out)
	l.mu.Lock()
	if l.retiring.Load() || l.closing {
		l.mu.Unlock()
		return errClosing
	}
	l.count.Add(1)
	l.wg.Add(1)
	l.mu.Unlock()
	l.m.Connections.WithLabelValues(l.cfg.Name).Inc()
	c, err := connection.NewFrom(nc, l.spec, nil, nil,
		connection.SetMessageReader(requestCounter{codec, link}),
		connection.SetMessageWriter(out),
		connection.SetRequestIDGenerator(&inboundIDs{}),
		connection.SendTimeout(replyTimeout),
		connection.IdleTime(time.Hour), // the switch does not ping terminals
		connection.ReadTimeout(l.cfg.IdleTimeout),
		connection.ReadTimeoutHandler(func(c *connection.Connection) {
			l.m.InputErrors.WithLabelValues(l.cfg.Name, "idle").Inc()
			log.Info("closing idle connection", zap.Duration("idle_timeout", l.cfg.IdleTimeout))
			go c.Close()
		}),
		connection.InboundMessageHandler(func(c *connection.Connection, msg *iso8583.Message) {
			if link.takeSignOffAnswer(msg) { // the VAN's 0810 to the switch's sign-off (van.go)
				return
			}
			l.workers.run(request{out: answerer{out, codec.TakeHeader(msg)}, msg: msg, raw: codec.TakeRaw(msg), link: link, log: log})
		}),
		connection.ErrorHandler(func(err error) {
			if peerClosed(err) {
				log.Debug("connection closed by the terminal")
				return
			}
			l.m.InputErrors.WithLabelValues(l.cfg.Name, inputErrorReason(err)).Inc()
			log.Warn("closing connection on bad input", zap.String("reason", unsafeReason(err)))
		}),
		connection.WithConnectionClosedHandler(func(c *connection.Connection) {
			// The connection can close before serveConn registers it:
			// closed then keeps it out of conns.
			l.mu.Lock()
			link.closed = true
			delete(l.conns, c)
			l.mu.Unlock()
			l.count.Add(-1)
			l.m.Connections.WithLabelValues(l.cfg.Name).Dec()
			l.linkClosed(link)
			log.Debug("connection closed")
			l.wg.Done()
		}),
	)
	if err != nil {
		l.count.Add(-1)
		l.wg.Done()
		l.m.Connections.WithLabelValues(l.cfg.Name).Dec()
		return fmt.Errorf("wrapping connection from %s: %w", remote, err)
	}
	if l.beforeRegister != nil {
		l.beforeRegister()
	}
	l.mu.Lock()
	// A TLS connection is served from its handshake's goroutine, which
	// neither Retire nor CloseAll waits for: one can get here after they
	// took their copy of conns. It is wound down instead, as they would.
	late := l.retiring.Load() || l.closing
	if !link.closed && !late {
		l.conns[c] = link
	}
	l.mu.Unlock()
	if late {
		log.Info("closing a connection that came once the listener was closing")
		go l.windDownLate(c, link)
		return nil
	}
	log.Debug("connection accepted")
	return nil
}

// requestCounter counts a request in flight on its link from the moment it
// is read (before the connection hands it to the inbound handler), so that
// a connection closing on a reload never drops one read but not yet served.
type requestCounter struct {
	*frame.Codec
	link *vanLink
}

func (r requestCounter) ReadMessage(rd io.Reader) (*iso8583.Message, error) {
	m, err := r.Codec.ReadMessage(rd)
	if err == nil {
		if mti, _ := m.GetMTI(); specs.IsRequest(mti) {
			r.link.inFlight.Add(1)
		}
	}
	return m, err
}

// inboundIDs gives every message read on a listener its own ID. A
// listener sends nothing through the library's Send (its sign-off
// matches its 0810 itself), so no answer is ever pending there: with an
// ID that cannot fail (moov's default needs DE 11) every message,
// answer-class or not, reaches the inbound handler, which serves or
// counts it, instead of the connection dropping it.
type inboundIDs struct{ n atomic.Uint64 }

func (g *inboundIDs) GenerateRequestID(*iso8583.Message) (string, error) {
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

// StopAccepting closes the listening socket.
func (l *Listener) StopAccepting() {
	if l.ln != nil && !l.handedOff.Load() {
		_ = l.ln.Close()
	}
}

// CloseAll closes every open connection and waits (up to ctx) for them to end.
func (l *Listener) CloseAll(ctx context.Context) {
	l.mu.Lock()
	l.closing = true
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
	// The connections are done (or ctx ended: a request that still comes
	// is served on a worker that then ends).
	l.workers.close()
}

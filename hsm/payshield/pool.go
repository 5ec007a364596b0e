package payshield

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// Errors of the connection to the HSM; the hsm package's sentinels, so
// that the switch decides on them without importing this package.
var (
	// ErrHSMUnavailable: no connection could be made or it broke.
	ErrHSMUnavailable = hsm.ErrHSMUnavailable
	// ErrTimeout: no answer within Options.Timeout.
	ErrTimeout = hsm.ErrHSMTimeout
)

// ErrorCode is the HSM's answer with an error code it does not mean as a
// verdict on the data (a wrong PIN block or MAC): errors.Is matches
// hsm.ErrHSMFault.
type ErrorCode = hsm.DeviceError

// pool is the connection pool: Connections connections, each carrying up
// to Pipeline outstanding commands matched to their answers by header.
type pool struct {
	opts    Options
	log     *zap.Logger
	slots   []*slot
	next    atomic.Uint32
	sem     chan struct{} // one token per outstanding command
	waiting atomic.Int64  // commands waiting for a token
	closed  atomic.Bool
	dialer  net.Dialer
}

type slot struct {
	mu sync.Mutex
	c  *conn
}

func newPool(opts Options, log *zap.Logger, reg prometheus.Registerer) (*pool, error) {
	p := &pool{opts: opts, log: log, sem: make(chan struct{}, opts.Connections*opts.Pipeline)}
	for range opts.Connections {
		p.slots = append(p.slots, &slot{})
	}
	if reg == nil {
		return p, nil
	}
	labels := prometheus.Labels{"backend": Name}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsm_pool_in_flight", Help: "HSM commands outstanding.", ConstLabels: labels},
			func() float64 { return float64(len(p.sem)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsm_pool_capacity", Help: "HSM commands that may be outstanding (connections x pipeline).", ConstLabels: labels},
			func() float64 { return float64(cap(p.sem)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsm_pool_waiting", Help: "HSM commands waiting for a free slot (pool saturated).", ConstLabels: labels},
			func() float64 { return float64(p.waiting.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsm_pool_connections", Help: "Open connections to the HSM.", ConstLabels: labels},
			func() float64 { return float64(p.open()) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("payshield: registering pool metrics: %w", err)
		}
	}
	return p, nil
}

func (p *pool) open() int {
	n := 0
	for _, s := range p.slots {
		s.mu.Lock()
		if s.c != nil && !s.c.dead() {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// do sends a command and returns the answer, whose response code it has
// checked. Errors wrap ErrHSMUnavailable or ErrTimeout.
func (p *pool) do(ctx context.Context, cmd hostcmd.Command) (hostcmd.Response, error) {
	if p.closed.Load() {
		return hostcmd.Response{}, fmt.Errorf("payshield: %s: closed: %w", cmd.Code(), ErrHSMUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	p.waiting.Add(1)
	select {
	case p.sem <- struct{}{}:
		p.waiting.Add(-1)
	case <-ctx.Done():
		p.waiting.Add(-1)
		return hostcmd.Response{}, fmt.Errorf("payshield: %s: every connection busy: %w: %w", cmd.Code(), ErrTimeout, ctx.Err())
	}
	defer func() { <-p.sem }()

	c, err := p.conn(ctx)
	if err != nil {
		return hostcmd.Response{}, fmt.Errorf("payshield: %s: connecting to %s: %w: %w", cmd.Code(), p.opts.Addr, ErrHSMUnavailable, err)
	}
	return c.roundTrip(ctx, cmd)
}

// conn returns the next slot's connection, dialling it when it is not
// open (reconnect).
func (p *pool) conn(ctx context.Context) (*conn, error) {
	s := p.slots[int(p.next.Add(1))%len(p.slots)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && !s.c.dead() {
		return s.c, nil
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", p.opts.Addr)
	if err != nil {
		return nil, err
	}
	if p.closed.Load() {
		_ = nc.Close()
		return nil, errors.New("closed")
	}
	s.c = newConn(nc, p.opts.HeaderLength, p.log)
	p.log.Info("connected to HSM", zap.String("addr", p.opts.Addr))
	return s.c, nil
}

func (p *pool) close() {
	p.closed.Store(true)
	for _, s := range p.slots {
		s.mu.Lock()
		if s.c != nil {
			s.c.fail(errors.New("pool closed"))
		}
		s.mu.Unlock()
	}
}

// conn is one connection with its outstanding commands by header.
type conn struct {
	nc     net.Conn
	hdrLen int
	log    *zap.Logger
	wmu    sync.Mutex

	mu      sync.Mutex
	pending map[string]chan []byte
	seq     uint64
	err     error
}

func newConn(nc net.Conn, hdrLen int, log *zap.Logger) *conn {
	c := &conn{nc: nc, hdrLen: hdrLen, log: log, pending: map[string]chan []byte{}}
	go c.read()
	return c
}

func (c *conn) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// fail closes the connection once and fails every outstanding command.
func (c *conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	_ = c.nc.Close()
	for h, ch := range c.pending {
		close(ch)
		delete(c.pending, h)
	}
}

// register reserves a header not in use on this connection.
func (c *conn) register() (string, chan []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return "", nil, c.err
	}
	mod := uint64(1)
	for range min(c.hdrLen, 9) {
		mod *= 10
	}
	for range mod {
		c.seq++
		h := strconv.FormatUint(c.seq%mod, 10)
		h = strings.Repeat("0", c.hdrLen-len(h)) + h
		if _, used := c.pending[h]; !used {
			ch := make(chan []byte, 1)
			c.pending[h] = ch
			return h, ch, nil
		}
	}
	return "", nil, errors.New("no free message header")
}

func (c *conn) unregister(h string) {
	c.mu.Lock()
	delete(c.pending, h)
	c.mu.Unlock()
}

func (c *conn) roundTrip(ctx context.Context, cmd hostcmd.Command) (hostcmd.Response, error) {
	code := cmd.Code()
	h, ch, err := c.register()
	if err != nil {
		return hostcmd.Response{}, fmt.Errorf("payshield: %s: %w: %w", code, ErrHSMUnavailable, err)
	}
	msg, err := hostcmd.Encode(h, cmd)
	if err == nil {
		msg, err = hostcmd.AppendFrame(nil, msg)
	}
	if err != nil {
		c.unregister(h)
		return hostcmd.Response{}, fmt.Errorf("payshield: %w", err)
	}
	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
	}
	_, err = c.nc.Write(msg)
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return hostcmd.Response{}, fmt.Errorf("payshield: %s: sending: %w: %w", code, ErrHSMUnavailable, err)
	}
	select {
	case raw, ok := <-ch:
		if !ok {
			return hostcmd.Response{}, fmt.Errorf("payshield: %s: connection lost: %w", code, ErrHSMUnavailable)
		}
		resp, err := hostcmd.DecodeResponse(raw, c.hdrLen)
		if err != nil || resp.Code != hostcmd.ResponseCode(code) {
			c.fail(fmt.Errorf("unexpected answer"))
			return hostcmd.Response{}, fmt.Errorf("payshield: %s: answered %q: %w", code, resp.Code, ErrHSMUnavailable)
		}
		return resp, nil
	case <-ctx.Done():
		// Close the connection: an answer arriving later must never be
		// taken for another command's.
		c.fail(fmt.Errorf("command %s timed out", code))
		return hostcmd.Response{}, fmt.Errorf("payshield: %s: %w: %w", code, ErrTimeout, ctx.Err())
	}
}

// read delivers answers to their commands by header until the connection
// fails.
func (c *conn) read() {
	r := bufio.NewReader(c.nc)
	for {
		msg, err := hostcmd.ReadFrame(r)
		if err != nil {
			c.fail(err)
			return
		}
		if len(msg) < c.hdrLen {
			c.fail(errors.New("answer shorter than its header"))
			return
		}
		h := string(msg[:c.hdrLen])
		c.mu.Lock()
		ch := c.pending[h]
		delete(c.pending, h)
		c.mu.Unlock()
		if ch == nil {
			c.log.Warn("HSM answer matches no outstanding command", zap.String("header", h))
			continue
		}
		ch <- msg
	}
}

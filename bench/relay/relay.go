// Package relay is the "bare relay" baseline of the benchmark (make bench):
// it reads length-prefixed ISO 8583 frames from terminal connections and
// forwards them to one issuer over ONE multiplexed connection, matching
// answers to requests by STAN (DE 11). It rewrites DE 11 to a STAN of its
// own on the way out and back on the way in, so terminals may reuse each
// other's STANs, and does nothing else: no unpacking beyond locating DE 11,
// no dialect mapping, no journal, no tokens, no rate limits. What the
// switch costs above it is the switch's own work.
package relay

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// maxFrame is the largest message body the relay accepts.
const maxFrame = 8192

// ErrSTAN is wrapped when a frame's DE 11 cannot be located or rewritten.
var ErrSTAN = errors.New("cannot locate DE 11")

// STANLocator finds DE 11 in a packed message of one dialect without
// unpacking the rest: it reads the MTI and bitmap and skips fields 2-10 by
// their length prefixes.
type STANLocator struct {
	spec *iso8583.MessageSpec
}

// NewSTANLocator returns a locator for spec; DE 11 must be 6 ASCII digits.
func NewSTANLocator(spec *iso8583.MessageSpec) (*STANLocator, error) {
	for _, id := range []int{0, 1, 11} {
		if spec.Fields[id] == nil {
			return nil, fmt.Errorf("%w: spec %q has no field %d", ErrSTAN, spec.Name, id)
		}
	}
	if s := spec.Fields[11].Spec(); s.Length != 6 {
		return nil, fmt.Errorf("%w: spec %q has a DE 11 of %d digits, want 6", ErrSTAN, spec.Name, s.Length)
	}
	return &STANLocator{spec: spec}, nil
}

// skip returns the offset after field id, which starts at off.
func (l *STANLocator) skip(body []byte, id, off int) (int, error) {
	f := l.spec.Fields[id]
	if f == nil {
		return 0, fmt.Errorf("%w: field %d is present but not in spec %q", ErrSTAN, id, l.spec.Name)
	}
	s := f.Spec()
	if off > len(body) {
		return 0, fmt.Errorf("%w: message ends before field %d", ErrSTAN, id)
	}
	n, prefBytes, err := s.Pref.DecodeLength(s.Length, body[off:])
	if err != nil {
		return 0, fmt.Errorf("%w: field %d length: %w", ErrSTAN, id, err)
	}
	if off+prefBytes > len(body) {
		return 0, fmt.Errorf("%w: message ends in field %d", ErrSTAN, id)
	}
	_, read, err := s.Enc.Decode(body[off+prefBytes:], n)
	if err != nil {
		return 0, fmt.Errorf("%w: field %d: %w", ErrSTAN, id, err)
	}
	return off + prefBytes + read, nil
}

// Locate returns where DE 11 lies in body: body[off:off+6].
func (l *STANLocator) Locate(body []byte) (off int, err error) {
	if off, err = l.skip(body, 0, 0); err != nil { // MTI
		return 0, err
	}
	bm := field.NewBitmap(l.spec.Fields[1].Spec())
	read, err := bm.Unpack(body[off:])
	if err != nil {
		return 0, fmt.Errorf("%w: bitmap: %w", ErrSTAN, err)
	}
	off += read
	if !bm.IsSet(11) {
		return 0, fmt.Errorf("%w: DE 11 is absent", ErrSTAN)
	}
	for id := 2; id < 11; id++ {
		if !bm.IsSet(id) {
			continue
		}
		if off, err = l.skip(body, id, off); err != nil {
			return 0, err
		}
	}
	if off+6 > len(body) {
		return 0, fmt.Errorf("%w: message ends in DE 11", ErrSTAN)
	}
	return off, nil
}

// Config is one relay.
type Config struct {
	// Upstream is the issuer's address; Spec and Header its (and the
	// terminals') dialect and framing: the relay does not translate.
	Upstream     string
	Spec, Header string
	// Log, when set, is a file every frame is made durable in before the
	// relay passes it on (durableLog): the durable relay, what a lean
	// path that journals each request and answer first costs.
	Log string
	// Errorf, when set, receives connection errors.
	Errorf func(format string, a ...any)
}

// Relay forwards terminal frames to one upstream connection.
type Relay struct {
	cfg Config
	hdr frame.Header
	loc *STANLocator

	upMu sync.Mutex // serialises writes upstream
	up   net.Conn

	mu      sync.Mutex
	pending map[[6]byte]waiter
	next    int // last relay STAN given out
	conns   map[net.Conn]struct{}

	reading sync.WaitGroup // the upstream reader and the terminal connections' goroutines

	log *durableLog // nil: frames are passed on at once

	down     chan struct{} // closed, under mu, when the relay shuts (Down)
	downOnce sync.Once
}

// waiter is a terminal's request in flight upstream.
type waiter struct {
	t    *termConn
	stan [6]byte // the terminal's own DE 11
}

type termConn struct {
	c  net.Conn
	mu sync.Mutex // serialises answers
}

// Dial connects to the upstream and returns a relay ready to Serve.
func Dial(cfg Config) (*Relay, error) {
	spec, err := specs.Load(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("relay spec: %w", err)
	}
	loc, err := NewSTANLocator(spec)
	if err != nil {
		return nil, err
	}
	h, err := frame.ParseHeader(cfg.Header)
	if err != nil {
		return nil, fmt.Errorf("relay header %q: %w", cfg.Header, err)
	}
	up, err := net.Dial("tcp", cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("relay upstream: %w", err)
	}
	if cfg.Errorf == nil {
		cfg.Errorf = func(string, ...any) {}
	}
	r := &Relay{cfg: cfg, hdr: h, loc: loc, up: up, pending: map[[6]byte]waiter{}, conns: map[net.Conn]struct{}{}, down: make(chan struct{})}
	if cfg.Log != "" {
		if r.log, err = openDurableLog(cfg.Log); err != nil {
			_ = up.Close()
			return nil, err
		}
		go r.log.run(r)
	}
	r.reading.Add(1)
	go r.readUpstream()
	return r, nil
}

// Journaled is how many frames the durable relay made durable, in how
// many groups (each one write and one sync); zeros without Config.Log.
func (r *Relay) Journaled() (frames, groups uint64) {
	if r.log == nil {
		return 0, 0
	}
	return r.log.frames.Load(), r.log.groups.Load()
}

// Serve accepts terminal connections on ln until it is closed.
func (r *Relay) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		r.mu.Lock()
		select {
		case <-r.down:
			r.mu.Unlock()
			_ = c.Close()
			return net.ErrClosed
		default:
		}
		r.conns[c] = struct{}{}
		r.reading.Add(1) // under mu, before down is seen: Close waits for it
		r.mu.Unlock()
		go func() {
			defer r.reading.Done()
			r.serveTerminal(&termConn{c: c})
		}()
	}
}

// Close closes the upstream and every terminal connection (and the log).
func (r *Relay) Close() error {
	err := r.shut()
	r.reading.Wait() // nothing reports through cfg.Errorf after Close returns
	if r.log != nil {
		err = errors.Join(err, r.log.close())
	}
	return err
}

// Down is closed when the relay has shut: closed, or stopped by itself
// (the upstream went, or the log failed to write or sync).
func (r *Relay) Down() <-chan struct{} { return r.down }

// shut closes the terminal connections and the upstream.
func (r *Relay) shut() error {
	r.mu.Lock()
	r.downOnce.Do(func() { close(r.down) })
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	return r.up.Close()
}

// nextSTAN returns a relay STAN not in flight (000001-999999, cyclic).
func (r *Relay) nextSTAN() ([6]byte, bool) {
	var s [6]byte
	for range 999_999 {
		r.next = r.next%999_999 + 1
		n := r.next
		for i := 5; i >= 0; i-- {
			s[i] = byte('0' + n%10)
			n /= 10
		}
		if _, busy := r.pending[s]; !busy {
			return s, true
		}
	}
	return s, false
}

func (r *Relay) serveTerminal(t *termConn) {
	defer func() {
		r.mu.Lock()
		delete(r.conns, t.c)
		r.mu.Unlock()
		_ = t.c.Close()
	}()
	br := bufio.NewReader(t.c)
	for {
		body, err := frame.ReadFrame(br, r.hdr, maxFrame)
		if err != nil {
			return
		}
		off, err := r.loc.Locate(body)
		if err != nil {
			r.cfg.Errorf("terminal %s: %v", t.c.RemoteAddr(), err)
			continue
		}
		var own [6]byte
		copy(own[:], body[off:off+6])
		r.mu.Lock()
		stan, ok := r.nextSTAN()
		if ok {
			r.pending[stan] = waiter{t: t, stan: own}
		}
		r.mu.Unlock()
		if !ok {
			r.cfg.Errorf("relay: every STAN is in flight")
			continue
		}
		copy(body[off:], stan[:])
		out, err := frame.AppendFrame(r.hdr, nil, body)
		if err != nil {
			r.cfg.Errorf("framing: %v", err)
			continue
		}
		if r.log != nil {
			if !r.log.pass(nil, out) {
				return
			}
			continue
		}
		r.upMu.Lock()
		_, err = r.up.Write(out)
		r.upMu.Unlock()
		if err != nil {
			r.cfg.Errorf("upstream write: %v", err)
			return
		}
	}
}

func (r *Relay) readUpstream() {
	defer r.reading.Done()
	br := bufio.NewReader(r.up)
	for {
		body, err := frame.ReadFrame(br, r.hdr, maxFrame)
		if err != nil {
			r.cfg.Errorf("upstream read: %v", err)
			_ = r.shut()
			return
		}
		off, err := r.loc.Locate(body)
		if err != nil {
			r.cfg.Errorf("upstream: %v", err)
			continue
		}
		var stan [6]byte
		copy(stan[:], body[off:off+6])
		r.mu.Lock()
		w, ok := r.pending[stan]
		delete(r.pending, stan)
		r.mu.Unlock()
		if !ok {
			continue // late or unknown: nobody waits for it
		}
		copy(body[off:], w.stan[:])
		out, err := frame.AppendFrame(r.hdr, nil, body)
		if err != nil {
			continue
		}
		if r.log != nil {
			if !r.log.pass(w.t, out) {
				return
			}
			continue
		}
		w.t.mu.Lock()
		_, _ = w.t.c.Write(out)
		w.t.mu.Unlock()
	}
}

// Package issuer emulates card issuers' approval hosts: ISO 8583 TCP
// servers that sign on, keep account balances, approve or decline
// purchases, take refunds and reversals (cancels and net cancels), with
// latency distributions, silence and injected faults (by percentage or on
// a schedule) for the switch's tests and field runs.
package issuer

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/iso/frame"
)

// Mode is how the issuer treats financial requests.
type Mode int32

const (
	// Normal answers every request.
	Normal Mode = iota
	// Silent reads authorisation, financial and reversal requests and never
	// answers them (a hung host); network management (0800) is still
	// answered, so the link stays signed on. Whether an unanswered request
	// is applied is Fault.ChargeWhenSilent (default: not applied).
	Silent
)

// String returns the mode's configuration name.
func (m Mode) String() string {
	switch m {
	case Normal:
		return "normal"
	case Silent:
		return "silent"
	}
	return fmt.Sprintf("mode(%d)", int32(m))
}

// ParseMode maps normal or silent to a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "normal", "":
		return Normal, nil
	case "silent":
		return Silent, nil
	}
	return Normal, fmt.Errorf("unknown issuer mode %q (want normal or silent)", s)
}

// Issuer is one emulated issuer approval host.
type Issuer struct {
	cfg         Config
	spec        *iso8583.MessageSpec
	header      frame.Header
	log         *zap.Logger
	ledger      *ledger
	zpk         atomic.Pointer[[]byte] // clear zone PIN key (DE 52 arrives under it); ChangeKey replaces it
	keyRequests atomic.Int64           // the switch's key requests taken (keyRequest)
	now         func() time.Time
	// reversals: the host takes 0400/0420/0421 (Config.AcceptsReversals).
	reversals bool
	stats     counters

	rng   *lockedRand      // seeded (Config.Seed): latency and fault draws
	clock func() time.Time // the fault schedule's clock (tests replace it)

	faultMu      sync.Mutex // guards the fields below
	fault        Fault      // base fault (SetFault)
	schedule     []window
	schedEpoch   time.Time // schedule windows count from here (zero: not running)
	schedOnStart bool      // the configured schedule starts with Start

	latency   atomic.Pointer[LatencyDist]
	mode      atomic.Int32 // Mode
	signOns   atomic.Int64
	approvals atomic.Uint64

	recMu    sync.Mutex
	received []Received

	stop chan struct{} // closed by Close: aborts latency waits and back-offs

	mu sync.Mutex // guards the fields below
	ln net.Listener
	// endpoints are the listen addresses, Config.Addr first (endpoints.go).
	endpoints []*endpoint
	sessions  map[*session]struct{}
	nextID    uint64
	started   bool
	closing   bool

	handlers sync.WaitGroup // inbound message handlers in flight
	loops    sync.WaitGroup // accept loop and session supervisors
}

// New validates cfg (defaults applied) and returns an issuer that is not
// listening yet. A nil log discards logging.
func New(cfg Config, log *zap.Logger) (*Issuer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("issuer config: %w", err)
	}
	spec, header, err := frame.LoadDialect(cfg.Spec, cfg.Header)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", cfg.Name, err)
	}
	zpk, err := cfg.zpk()
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", cfg.Name, err) // unreachable: validated
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.BINs = append([]string(nil), cfg.BINs...)
	cfg.Addrs = append([]string(nil), cfg.Addrs...)
	cfg.PINs = maps.Clone(cfg.PINs)
	if cfg.Reversals != nil {
		cfg.Reversals = Bool(*cfg.Reversals)
	}
	is := &Issuer{
		cfg:       cfg,
		spec:      spec,
		header:    header,
		log:       log.With(zap.String("issuer", cfg.Name)),
		ledger:    newLedger(cfg.DefaultBalance, cfg.Balances),
		now:       time.Now,
		rng:       newLockedRand(cfg.Seed),
		clock:     time.Now,
		reversals: cfg.AcceptsReversals(),
		stop:      make(chan struct{}),
		sessions:  make(map[*session]struct{}),
	}
	is.zpk.Store(&zpk)
	is.cfg.Balances = nil // the ledger holds its own copy
	dist := FixedLatency(cfg.Latency)
	if cfg.LatencyDist.Kind != "" {
		dist = cfg.LatencyDist.normalized()
	}
	is.latency.Store(&dist)
	is.fault = cfg.Fault.clamped()
	is.setScheduleLocked(cfg.Schedule)
	is.schedOnStart = len(cfg.Schedule) > 0
	is.cfg.Schedule = nil // held in is.schedule
	return is, nil
}

// Name returns the issuer's configured name.
func (is *Issuer) Name() string { return is.cfg.Name }

// BINs returns the BIN prefixes the issuer owns.
func (is *Issuer) BINs() []string { return append([]string(nil), is.cfg.BINs...) }

// Start binds the listen address and starts accepting connections.
func (is *Issuer) Start() error {
	is.mu.Lock()
	defer is.mu.Unlock()
	switch {
	case is.closing:
		return fmt.Errorf("issuer %q: start after close", is.cfg.Name)
	case is.started:
		return fmt.Errorf("issuer %q: already started", is.cfg.Name)
	}
	if err := is.listenAll(); err != nil { // endpoints.go
		return err
	}
	is.started = true
	is.faultMu.Lock()
	if is.schedOnStart {
		is.schedEpoch = is.clock() // the configured schedule counts from Start
	}
	is.faultMu.Unlock()
	for _, ep := range is.endpoints {
		is.loops.Add(1)
		go is.acceptLoop(ep)
	}
	is.log.Info("issuer listening",
		zap.Strings("addrs", is.addrsLocked()), zap.Strings("bins", is.cfg.BINs),
		zap.String("spec", is.cfg.Spec), zap.String("header", is.header.String()),
		zap.Stringer("mode", is.Mode()), zap.Stringer("latency", is.LatencyDist()),
		zap.Bool("reversals", is.reversals), zap.Uint64("seed", is.Seed()))
	return nil
}

// Addr returns the bound address once started, else the configured one.
func (is *Issuer) Addr() string {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.ln != nil {
		return is.ln.Addr().String()
	}
	return is.cfg.Addr
}

func (is *Issuer) addrsLocked() []string {
	out := make([]string, 0, len(is.endpoints))
	for _, ep := range is.endpoints {
		out = append(out, ep.addr)
	}
	return out
}

// Close stops listening, lets responses being written finish, closes every
// connection and returns once all of the issuer's goroutines have ended.
// Requests waiting out their latency are dropped unanswered. Close is
// idempotent.
func (is *Issuer) Close() error {
	is.mu.Lock()
	if is.closing {
		is.mu.Unlock()
		is.loops.Wait()
		return nil
	}
	is.closing = true
	ln, eps := is.ln, is.endpoints
	is.mu.Unlock()

	close(is.stop)
	var err error
	for _, ep := range eps {
		if cerr := ep.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && !ep.down.Load() {
			err = errors.Join(err, fmt.Errorf("issuer %q: closing listener %s: %w", is.cfg.Name, ep.addr, cerr))
		}
	}
	// No handler starts after closing is set; those running either reply
	// now (bounded by replyTimeout) or give up their latency wait.
	is.handlers.Wait()

	is.mu.Lock()
	sessions := make([]*session, 0, len(is.sessions))
	for s := range is.sessions {
		sessions = append(sessions, s)
	}
	is.mu.Unlock()
	for _, s := range sessions {
		s.conn.Close() // the read loop ends, and with it the connection
	}
	is.loops.Wait()
	if ln != nil {
		is.log.Info("issuer closed")
	}
	return err
}

// SetLatency delays every later authorisation, financial and reversal
// response by d: SetLatencyDist(FixedLatency(d)), negative d read as 0.
func (is *Issuer) SetLatency(d time.Duration) {
	dist := FixedLatency(max(d, 0))
	is.latency.Store(&dist)
}

// Latency returns the current response delay: the fixed one, or the
// Typical delay of a random distribution (LatencyDist has it all).
func (is *Issuer) Latency() time.Duration { return is.latency.Load().Typical() }

// SetMode switches between Normal and Silent for later requests.
func (is *Issuer) SetMode(m Mode) {
	if old := Mode(is.mode.Swap(int32(m))); old != m {
		is.log.Info("issuer mode changed", zap.Stringer("from", old), zap.Stringer("to", m))
	}
}

// Mode returns the current mode.
func (is *Issuer) Mode() Mode { return Mode(is.mode.Load()) }

// SignOns returns how many sign-ons (0800 DE 70 001) the issuer answered.
func (is *Issuer) SignOns() int64 { return is.signOns.Load() }

// Received returns a copy of the requests received so far (at most
// ReceivedLimit, oldest first).
func (is *Issuer) Received() []Received {
	is.recMu.Lock()
	defer is.recMu.Unlock()
	out := make([]Received, len(is.received))
	for i, r := range is.received {
		out[i] = r.clone()
	}
	return out
}

// ClearReceived empties the request log.
func (is *Issuer) ClearReceived() {
	is.recMu.Lock()
	is.received = nil
	is.recMu.Unlock()
}

// Balance returns the available balance of an account in KRW: its opening
// balance until it is used, 0 for a PAN that is not the issuer's account.
func (is *Issuer) Balance(p string) int64 {
	if !is.isAccount(p) {
		return 0
	}
	return is.ledger.balance(p)
}

// Ledger returns a snapshot of the balances of the accounts that have an
// override or have been used, keyed by PAN.
func (is *Issuer) Ledger() map[string]int64 { return is.ledger.snapshot() }

// Approvals returns a snapshot of the approvals the issuer recorded for
// reversals (at most ApprovalLimit, oldest first), each with what has been
// reversed of it and what remains. Approval.PAN is the full card number:
// for tests only, never to be logged or served.
func (is *Issuer) Approvals() []Approval { return is.ledger.approvalsSnapshot() }

// Stats returns the issuer's decision counters.
func (is *Issuer) Stats() Stats { return is.stats.snapshot() }

// AcceptsReversals reports whether the issuer takes reversals (else it
// answers them 12).
func (is *Issuer) AcceptsReversals() bool { return is.reversals }

// Connections returns the number of open connections.
func (is *Issuer) Connections() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return len(is.sessions)
}

// enterHandler registers an inbound handler unless the issuer is closing.
func (is *Issuer) enterHandler() bool {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.closing {
		return false
	}
	is.handlers.Add(1)
	return true
}

// acceptLoop accepts connections until the listener is closed.
func (is *Issuer) acceptLoop(ep *endpoint) {
	defer is.loops.Done()
	ln := ep.ln
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || is.isClosing() {
				return
			}
			// Out of file descriptors and the like: back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			is.log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-is.stop:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		is.serve(conn, ep)
	}
}

func (is *Issuer) isClosing() bool {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.closing
}

func (is *Issuer) isAccount(p string) bool {
	return pan.Luhn(p) && is.cfg.owns(p)
}

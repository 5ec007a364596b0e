package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// ErrConnect is wrapped when the terminals cannot connect to the target.
var ErrConnect = errors.New("cannot connect to the target")

// redialEvery spaces a broken terminal's reconnection attempts.
const redialEvery = 500 * time.Millisecond

// arrival is one request the generator intends to send.
type arrival struct {
	seq      uint64
	intended time.Time
}

// engine is one run.
type engine struct {
	cfg      Config
	dialAddr string
	spec     *iso8583.MessageSpec
	seed     uint64
	rec      *recorder
	terms    []*term
	inFlight atomic.Int64
	// sendCtx outlives the caller's ctx: once sent, a request is awaited
	// (for at most Timeout) and a timed-out purchase is net-cancelled even
	// after an interrupt.
	sendCtx context.Context
	mixCut  [numKinds]int // cumulative weights
	open    bool
	routes  routeRecorder // outcomes by card BIN (breakdown.go)
}

// term is one terminal connection; it reconnects after a link failure.
type term struct {
	e     *engine
	id    string
	opts  terminal.Options
	sales salePool

	mu       sync.Mutex
	client   *terminal.Client
	nextDial time.Time
	closing  sync.WaitGroup // clients being closed after a failure
}

func (t *term) get(ctx context.Context) (*terminal.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != nil {
		return t.client, nil
	}
	if time.Now().Before(t.nextDial) {
		return nil, fmt.Errorf("terminal %s: link down, next reconnect attempt at %s", t.id, t.nextDial.Format("15:04:05.000"))
	}
	c, err := terminal.Dial(ctx, t.opts)
	if err != nil {
		t.nextDial = time.Now().Add(redialEvery)
		return nil, err
	}
	t.client = c
	return c, nil
}

// broken drops c after a link failure; the next get reconnects.
func (t *term) broken(c *terminal.Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != c {
		return
	}
	t.client = nil
	t.nextDial = time.Now()
	t.closing.Add(1)
	go func() {
		defer t.closing.Done()
		_ = c.Close()
	}()
}

func (t *term) close() {
	t.mu.Lock()
	c := t.client
	t.client = nil
	t.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	t.closing.Wait()
}

// Run performs one load run and returns its report. The run ends by itself
// at cfg.Duration (or after cfg.Count requests) or when ctx ends; requests
// already sent are then awaited for at most cfg.Timeout. An error means the
// run could not start: a bad configuration (wrapping ErrConfig), a refused
// target (ErrRemoteTarget) or no connection (ErrConnect).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dialAddr, err := CheckTarget(ctx, cfg.Addr, cfg.AllowRemote)
	if err != nil {
		return nil, err
	}
	spec, _, err := frame.LoadDialect(cfg.Spec, cfg.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	e := &engine{cfg: cfg, dialAddr: dialAddr, spec: spec, open: cfg.Closed == 0,
		sendCtx: context.WithoutCancel(ctx)}
	e.seed = cfg.Seed
	if e.seed == 0 {
		e.seed = rand.Uint64()
	}
	e.mixCut = [numKinds]int{cfg.Mix.Purchase, cfg.Mix.Purchase + cfg.Mix.Cancel, cfg.Mix.total()}
	if err := e.dial(ctx); err != nil {
		return nil, err
	}

	before, metricsErr := e.scrapeSwitch(ctx)
	start := time.Now()
	e.rec = newRecorder(start)
	stopProgress := e.progress(start)
	var end time.Time
	if e.open {
		end = e.runOpen(ctx, start)
	} else {
		end = e.runClosed(ctx, start)
	}
	for _, t := range e.terms {
		t.close()
	}
	stopProgress()
	rep := e.report(start, end)
	e.addSwitchTime(ctx, rep, before, metricsErr)
	return rep, nil
}

// dial connects every terminal, a few at a time.
func (e *engine) dial(ctx context.Context) error {
	e.terms = make([]*term, e.cfg.Terminals)
	sem := make(chan struct{}, 16)
	errs := make([]error, len(e.terms))
	var wg sync.WaitGroup
	for i := range e.terms {
		t := &term{e: e, id: e.cfg.terminalID(i)}
		t.opts = terminal.Options{
			Addr:       e.dialAddr,
			Spec:       e.cfg.Spec,
			Header:     e.cfg.Header,
			TerminalID: t.id,
			MerchantID: e.cfg.MerchantID,
			Timeout:    e.cfg.Timeout,
			Logger:     e.cfg.Logger,
		}
		e.terms[i] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, errs[i] = t.get(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, t := range e.terms {
			t.close()
		}
		if errors.Is(err, terminal.ErrConfig) {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return fmt.Errorf("%w %s: %w", ErrConnect, e.cfg.Addr, errors.Join(errs...))
	}
	return nil
}

// runOpen schedules arrivals at the target rate until the duration or the
// count is reached and returns when every request is answered, timed out
// or given up. Latency counts from each arrival's intended send time, also
// when the generator could not send it then (every terminal busy, the
// in-flight cap reached, or the generator itself late).
func (e *engine) runOpen(ctx context.Context, start time.Time) time.Time {
	end := start.Add(e.cfg.Duration)
	// Arrivals not sent by then (the target has not kept up) are counted
	// as unsent instead.
	drainBy := end.Add(e.cfg.Timeout)
	var wg sync.WaitGroup
	var dispatch func(a arrival)
	var finish func()
	if e.cfg.OneOutstanding {
		queue := make(chan arrival, 1<<16)
		for _, t := range e.terms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for a := range queue {
					if ctx.Err() != nil || time.Now().After(drainBy) {
						e.rec.dropUnsent()
						continue
					}
					e.do(a, t)
				}
			}()
		}
		dispatch = func(a arrival) { queue <- a }
		finish = func() { close(queue) }
	} else {
		slots := make(chan struct{}, e.cfg.MaxInFlight)
		dispatch = func(a arrival) {
			select {
			case slots <- struct{}{}:
			default: // the in-flight cap is reached: wait, the arrival's clock running
				timer := time.NewTimer(time.Until(drainBy))
				select {
				case slots <- struct{}{}:
					timer.Stop()
				case <-ctx.Done():
					timer.Stop()
					e.rec.dropUnsent()
					return
				case <-timer.C:
					e.rec.dropUnsent()
					return
				}
			}
			t := e.terms[a.seq%uint64(len(e.terms))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				e.do(a, t)
			}()
		}
		finish = func() {}
	}

	// The scheduler sleeps on a thread of its own for precise wake-ups.
	done := make(chan struct{})
	go func() {
		defer close(done)
		lockTimerThread()
		rng := rand.New(rand.NewPCG(e.seed, 0x5c4ed))
		var offset time.Duration // Poisson: running sum of gaps
		interval := float64(time.Second) / e.cfg.Rate
		for seq := uint64(0); ; seq++ {
			if e.cfg.Count > 0 && seq >= uint64(e.cfg.Count) {
				return
			}
			var at time.Time
			if e.cfg.Arrivals == Poisson {
				if seq > 0 {
					offset += time.Duration(rng.ExpFloat64() * interval)
				}
				at = start.Add(offset)
			} else {
				at = start.Add(time.Duration(float64(seq) * interval))
			}
			if !at.Before(end) {
				return
			}
			if !sleepUntil(ctx, at) {
				return
			}
			e.rec.offer(at)
			dispatch(arrival{seq: seq, intended: at})
		}
	}()
	<-done
	finish()
	wg.Wait()
	return e.endTime(end)
}

// runClosed keeps cfg.Closed requests in flight: each worker sends its
// next request when the previous one is answered (or failed). With one
// request outstanding per terminal (POS) each worker owns a terminal;
// over VAN links request n goes on terminal n mod Terminals, so every
// terminal ID carries traffic even when Closed < Terminals.
func (e *engine) runClosed(ctx context.Context, start time.Time) time.Time {
	end := start.Add(e.cfg.Duration)
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < e.cfg.Closed; w++ {
		own := e.terms[w%len(e.terms)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := seq.Add(1) - 1
				now := time.Now()
				if (e.cfg.Count > 0 && n >= uint64(e.cfg.Count)) || !now.Before(end) {
					return
				}
				t := own
				if !e.cfg.OneOutstanding {
					t = e.terms[n%uint64(len(e.terms))]
				}
				e.rec.offer(now)
				e.do(arrival{seq: n, intended: now}, t)
			}
		}()
	}
	wg.Wait()
	return e.endTime(end)
}

// endTime is when the run's measurement ends: the scheduled end or the
// last answer (or failure), whichever is later; earlier when interrupted.
func (e *engine) endTime(scheduled time.Time) time.Time {
	now := time.Now()
	e.rec.mu.Lock()
	last := e.rec.lastDone
	e.rec.mu.Unlock()
	end := scheduled
	if now.Before(end) { // interrupted or count reached early
		end = now
	}
	if last.After(end) {
		end = last
	}
	return end
}

// pick chooses a request type by the mix.
func (e *engine) pick(rng *rand.Rand) kind {
	n := rng.IntN(e.mixCut[numKinds-1])
	for k := kind(0); k < numKinds; k++ {
		if n < e.mixCut[k] {
			return k
		}
	}
	return kindPurchase
}

// do sends one request of arrival a on terminal t and records the outcome.
func (e *engine) do(a arrival, t *term) {
	rng := rand.New(rand.NewPCG(e.seed, a.seq+1))
	k := e.pick(rng)
	var orig sale
	if k != kindPurchase {
		var ok bool
		if orig, ok = t.sales.take(rng, k == kindRefund); !ok {
			e.rec.fallback() // no approved sale of this terminal to give back yet
			k = kindPurchase
		}
	}
	client, err := t.get(e.sendCtx)
	if err != nil {
		if k != kindPurchase {
			t.sales.putBack(orig, rng)
		}
		e.rec.sending(k, a.intended, time.Now(), e.open)
		e.rec.fail(k, a.intended, time.Now(), false, errConnection)
		return
	}
	now := time.Now()
	stan := client.NextSTAN()
	var msg *iso8583.Message
	var s sale
	switch k {
	case kindPurchase:
		card := e.cfg.Cards[int(a.seq%uint64(len(e.cfg.Cards)))]
		amount := e.cfg.AmountMin + rng.Int64N(e.cfg.AmountMax-e.cfg.AmountMin+1)
		msg, err = purchaseMessage(e.spec, card, amount, e.cfg.Currency, stan, now, t.opts)
		if err == nil {
			s = saleOf(msg, card, amount)
		}
	case kindCancel:
		msg, err = cancelMessage(e.spec, orig, stan, now, t.opts)
	case kindRefund:
		msg, err = refundMessage(e.spec, orig, stan, now, t.opts)
	}
	if err != nil {
		e.cfg.Logger.Warn("building request", zap.Stringer("type", k), zap.Error(err))
		e.rec.sending(k, a.intended, now, e.open)
		e.rec.fail(k, a.intended, time.Now(), false, errBuild)
		return
	}
	card := s.card
	if k != kindPurchase {
		card = orig.card
	}
	e.rec.sending(k, a.intended, time.Now(), e.open)
	e.inFlight.Add(1)
	resp, err := client.Send(e.sendCtx, msg)
	done := time.Now()
	e.inFlight.Add(-1)
	if err != nil {
		timeout := errors.Is(err, connection.ErrSendTimeout)
		e.rec.fail(k, a.intended, done, timeout, errConnection)
		e.routes.fail(card, timeout)
		if !timeout {
			e.cfg.Logger.Warn("request failed", zap.Stringer("type", k), zap.String("terminal", t.id), zap.Error(err))
			t.broken(client)
		}
		if timeout && k == kindPurchase && !e.cfg.NoNetCancel {
			e.netCancel(t, s)
		}
		return
	}
	rc, _ := resp.GetString(specs.ResponseCode)
	mti, _ := resp.GetMTI()
	reqMTI, _ := msg.GetMTI()
	want, _ := specs.ResponseMTI(reqMTI)
	approved := codes.Code(rc).IsApproved()
	e.rec.answer(k, a.intended, done, rc, approved, mti != want)
	e.routes.answer(card, done.Sub(a.intended), approved)
	if k == kindPurchase && approved {
		s.rrn, _ = resp.GetString(specs.RRN)
		s.auth, _ = resp.GetString(specs.ApprovalCode)
		t.sales.add(s, rng)
	}
}

// netCancelAttempts bounds how often a net cancel is sent: the first time
// and repeats while it gets no answer or a 94 (the switch still has the
// original in flight and asks for a repeat).
const netCancelAttempts = 5

// netCancel sends a full 0400 for the purchase s that got no answer, as a
// POS or VAN does before anything else, on the same terminal; a repeat is
// the identical message (same STAN and DE 7), so a switch that did journal
// the first one answers the repeat from its journal.
func (e *engine) netCancel(t *term, s sale) {
	pause := min(max(e.cfg.Timeout, 200*time.Millisecond), 2*time.Second)
	var msg *iso8583.Message
	for attempt := 1; ; attempt++ {
		last := attempt == netCancelAttempts
		if attempt > 1 {
			e.rec.netCancelRepeat()
			time.Sleep(pause)
		}
		client, err := t.get(e.sendCtx)
		if err != nil {
			if last {
				e.rec.netCancel(false, "", false)
				return
			}
			continue
		}
		if msg == nil {
			if msg, err = cancelMessage(e.spec, s, client.NextSTAN(), time.Now(), t.opts); err != nil {
				e.cfg.Logger.Warn("building net cancel", zap.Error(err))
				e.rec.netCancel(false, "", false)
				return
			}
		}
		resp, err := client.Send(e.sendCtx, msg)
		if err != nil {
			timeout := errors.Is(err, connection.ErrSendTimeout)
			if !timeout {
				t.broken(client)
			}
			if last {
				e.rec.netCancel(false, "", timeout)
				return
			}
			continue
		}
		rc, _ := resp.GetString(specs.ResponseCode)
		if codes.Code(rc) == codes.Duplicate && !last {
			continue
		}
		e.rec.netCancel(true, rc, false)
		return
	}
}

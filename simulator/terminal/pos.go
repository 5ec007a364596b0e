package terminal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// POS defaults.
const (
	// DefaultNetCancelAttempts is how often the automatic net cancel (0400)
	// is sent, the same message each time, until it is answered.
	DefaultNetCancelAttempts = 3
	// DefaultNetCancelRetryWait is the pause before a net cancel answered
	// 94 (original still in flight) is repeated.
	DefaultNetCancelRetryWait = time.Second
	// DefaultConnectTimeout bounds each (re)connection of a POS.
	DefaultConnectTimeout = 10 * time.Second
)

// ErrBusy is returned by POS.Send while the terminal still waits for the
// answer to an earlier request: like a real POS terminal, it has at most one
// request outstanding.
var ErrBusy = errors.New("terminal busy: a request is outstanding")

// ErrNoResponse is wrapped by POS.Send's error when the request went out
// and no answer arrived in time (or the connection broke while waiting).
var ErrNoResponse = errors.New("no response")

// POSOptions configures a POS on top of the link Options.
type POSOptions struct {
	// Timeout is how long the terminal waits for each answer before it
	// gives up (and, for a financial request, sends the net cancel).
	// Default: Options.Timeout (30s).
	Timeout time.Duration
	// ConnectTimeout bounds each (re)connection. Default 10s.
	ConnectTimeout time.Duration
	// NetCancelAttempts is how often the automatic 0400 is sent (an exact
	// repeat each time) until it is answered. Default 3.
	NetCancelAttempts int
	// NetCancelRetryWait is the pause before repeating a net cancel that
	// was answered 94 (the original still in flight at the switch); such
	// repeats go on for at most Timeout. Default 1s.
	NetCancelRetryWait time.Duration
	// DisableNetCancel turns the automatic net cancel off.
	DisableNetCancel bool
	// MACKey, when set, makes the terminal keyed: every request carries an
	// ISO 9797-1 algorithm 3 (retail) MAC under this 16-byte TDES key in
	// DE 64 (DE 128 when the message has a secondary bitmap). Never logged.
	MACKey []byte
	// STAN, when set, is shared with other POS values of the same terminal
	// ID so that their STANs never collide; nil means a fresh generator
	// starting at a random STAN.
	STAN *STANGenerator
}

// MACMode says what a request's MAC field carries.
type MACMode int

const (
	// MACAuto signs the request when the POS has a MAC key.
	MACAuto MACMode = iota
	// MACNone sends the request without a MAC even on a keyed terminal.
	MACNone
	// MACWrong sends a deliberately wrong MAC (the right one with its last
	// byte inverted, or eight 0xFF bytes without a key).
	MACWrong
)

// SendOptions are per-request options of POS.Send.
type SendOptions struct {
	// Timeout overrides POSOptions.Timeout for this request (0: default).
	Timeout time.Duration
	// MAC chooses what DE 64/128 carries.
	MAC MACMode
}

// Exchange is one request of a POS and what came back.
type Exchange struct {
	// Request is the message as sent (STAN, DE 7, terminal ID and MAC
	// filled in). It may carry card data; print it only through
	// pan.Describe.
	Request *iso8583.Message
	// Response is nil when no answer arrived.
	Response *iso8583.Message
	// Err says why Response is nil.
	Err error
	// Latency is the time from sending to the answer (or to giving up).
	Latency time.Duration
	// Attempts counts the sends of this request (more than one only for
	// the repeats of an automatic net cancel).
	Attempts int
	// NetCancel is the automatic 0400 the POS sent because Response did
	// not arrive to a financial or authorisation request.
	NetCancel *Exchange
}

// RC returns the response's DE 39, or "" without a response.
func (e *Exchange) RC() string {
	if e == nil || e.Response == nil {
		return ""
	}
	rc, _ := e.Response.GetString(specs.ResponseCode)
	return rc
}

// BatchTotals are a terminal's totals since its last agreed reconciliation,
// as the ISO 8583:1987 0500 carries them: approved sales (debits), their
// cancels (debit reversals) and refunds (credits), counts and amounts.
type BatchTotals struct {
	Sales, SalesAmount     int64
	Cancels, CancelsAmount int64
	Refunds, RefundsAmount int64
}

// Batch totals data elements (ISO 8583:1987).
const (
	DECredits             = 74
	DEDebits              = 76
	DEDebitReversals      = 77
	DECreditsAmount       = 86
	DEDebitsAmount        = 88
	DEDebitReversalAmount = 89
)

// Fields returns the totals as 0500 data elements: DE 76/88 sales, DE
// 77/89 cancels, DE 74/86 refunds, counts n 10 and amounts n 16.
func (b BatchTotals) Fields() map[int]string {
	return map[int]string{
		DEDebits: fmt.Sprintf("%010d", b.Sales), DEDebitsAmount: fmt.Sprintf("%016d", b.SalesAmount),
		DEDebitReversals: fmt.Sprintf("%010d", b.Cancels), DEDebitReversalAmount: fmt.Sprintf("%016d", b.CancelsAmount),
		DECredits: fmt.Sprintf("%010d", b.Refunds), DECreditsAmount: fmt.Sprintf("%016d", b.RefundsAmount),
	}
}

// sale is what the terminal remembers of one of its sales.
type sale struct {
	amount, remaining int64
	approved          bool
	rrn, auth         string
}

// POS is one simulated POS terminal on top of a Client, behaving as real
// terminals do: at most one request outstanding, its own response timeout,
// and an automatic net cancel (망취소: a 0400 naming the original in DE 90)
// when the answer to a financial or authorisation request does not arrive.
// It assigns STANs, keeps its batch totals for the 0500, signs requests
// when keyed, and reconnects after a broken connection. Its methods are
// safe for concurrent use; concurrent Sends get ErrBusy.
type POS struct {
	opts    Options
	po      POSOptions
	spec    *iso8583.MessageSpec
	timeout time.Duration
	stan    *STANGenerator
	slot    chan struct{}    // holds a token while a request is outstanding
	now     func() time.Time // DE 7 and the net cancel's patience; tests set their own clock

	mu      sync.Mutex
	client  *Client
	ksn     ksnCounter
	batch   BatchTotals
	sales   map[string]*sale // by original key (MTI, STAN, DE 7)
	counted map[string]bool  // cancels and refunds already in the batch
	closed  bool
}

// NewPOS returns a POS for the link opts; it connects on its first request.
// Zero fields of opts and po take their defaults. opts.Timeout is the
// default response timeout unless po.Timeout is set.
func NewPOS(opts Options, po POSOptions) (*POS, error) {
	opts, spec, err := opts.prepared()
	if err != nil {
		return nil, err
	}
	if po.MACKey != nil && len(po.MACKey) != 16 {
		return nil, fmt.Errorf("terminal: %w: MAC key must be 16 bytes (double-length TDES), got %d bytes", ErrConfig, len(po.MACKey))
	}
	if po.Timeout <= 0 {
		po.Timeout = opts.Timeout
	}
	if po.ConnectTimeout <= 0 {
		po.ConnectTimeout = DefaultConnectTimeout
	}
	if po.NetCancelAttempts <= 0 {
		po.NetCancelAttempts = DefaultNetCancelAttempts
	}
	if po.NetCancelRetryWait <= 0 {
		po.NetCancelRetryWait = DefaultNetCancelRetryWait
	}
	if po.STAN == nil {
		po.STAN = NewRandomSTANGenerator()
	}
	// Each request's wait is bounded by its own context; the client's own
	// limit must not cut a longer per-request timeout short.
	opts.Timeout = max(opts.Timeout, po.Timeout, 10*time.Minute)
	return &POS{
		opts:    opts,
		po:      po,
		spec:    spec,
		timeout: po.Timeout,
		stan:    po.STAN,
		slot:    make(chan struct{}, 1),
		now:     time.Now,
		sales:   map[string]*sale{},
		counted: map[string]bool{},
	}, nil
}

// DialPOS is NewPOS followed by a connection to the switch.
func DialPOS(ctx context.Context, opts Options, po POSOptions) (*POS, error) {
	p, err := NewPOS(opts, po)
	if err != nil {
		return nil, err
	}
	if _, err := p.conn(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Spec returns the message spec the terminal speaks.
func (p *POS) Spec() *iso8583.MessageSpec { return p.spec }

// TerminalID returns DE 41 of the terminal.
func (p *POS) TerminalID() string { return p.opts.TerminalID }

// MerchantID returns DE 42 of the terminal.
func (p *POS) MerchantID() string { return p.opts.MerchantID }

// Addr returns the switch address.
func (p *POS) Addr() string { return p.opts.Addr }

// Timeout returns the default response timeout.
func (p *POS) Timeout() time.Duration { return p.timeout }

// NextSTAN returns the terminal's next STAN (six digits).
func (p *POS) NextSTAN() string { return p.stan.Next() }

// Batch returns the terminal's totals since its last agreed 0500.
func (p *POS) Batch() BatchTotals {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batch
}

// Close closes the connection, if any.
func (p *POS) Close() error {
	p.mu.Lock()
	c := p.client
	p.client, p.closed = nil, true
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// conn returns the connected client, connecting when needed.
func (p *POS) conn(ctx context.Context) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("terminal %s: closed", p.opts.TerminalID)
	}
	if p.client != nil {
		return p.client, nil
	}
	dctx, cancel := context.WithTimeout(ctx, p.po.ConnectTimeout)
	defer cancel()
	c, err := Dial(dctx, p.opts)
	if err != nil {
		return nil, err
	}
	p.client = c
	return c, nil
}

// drop forgets a broken connection so that the next request reconnects.
func (p *POS) drop(c *Client) {
	p.mu.Lock()
	if p.client == c {
		p.client = nil
	}
	p.mu.Unlock()
	go func() { _ = c.Close() }()
}

// Send sends msg as the terminal's one outstanding request and waits for
// its answer. Missing DE 11 (the terminal's next STAN), DE 7 (now, UTC) and
// DE 41 are filled in, and a keyed terminal signs the message.
//
// It returns ErrBusy at once while another request is outstanding, and a
// nil Exchange with an error when nothing was sent (cannot connect, the
// message does not pack). When the request went out but no answer came,
// the error wraps ErrNoResponse and the Exchange says what happened; for a
// 0100 or 0200 the POS then sends the net cancel automatically (see
// Exchange.NetCancel) before Send returns, as Korean VAN practice requires;
// it repeats the net cancel while unanswered (NetCancelAttempts) or
// answered 94 (the original still in flight at the switch).
func (p *POS) Send(ctx context.Context, msg *iso8583.Message, so SendOptions) (*Exchange, error) {
	select {
	case p.slot <- struct{}{}:
	default:
		return nil, fmt.Errorf("terminal %s: %w", p.opts.TerminalID, ErrBusy)
	}
	defer func() { <-p.slot }()
	if err := p.complete(msg, so.MAC); err != nil {
		return nil, err
	}
	timeout := so.Timeout
	if timeout <= 0 {
		timeout = p.timeout
	}
	ex, err := p.exchange(ctx, msg, timeout)
	if ex == nil {
		return nil, err
	}
	if ex.Response != nil {
		p.record(msg, ex.Response)
		return ex, nil
	}
	if p.needsNetCancel(msg) {
		ex.NetCancel = p.netCancel(context.WithoutCancel(ctx), msg)
	}
	return ex, err
}

// complete fills DE 7, 11 and 41 when missing and applies the MAC mode.
func (p *POS) complete(msg *iso8583.Message, mode MACMode) error {
	spec := msg.GetSpec()
	fill := func(id int, v func() string) error {
		if _, ok := spec.Fields[id]; !ok || msg.GetField(id) != nil {
			return nil
		}
		if err := msg.Field(id, v()); err != nil {
			return fmt.Errorf("terminal %s: setting DE %d: %w", p.opts.TerminalID, id, err)
		}
		return nil
	}
	if err := fill(specs.STAN, p.stan.Next); err != nil {
		return err
	}
	if err := fill(specs.TransmissionDateTime, func() string { return p.now().UTC().Format("0102150405") }); err != nil {
		return err
	}
	if err := fill(specs.TerminalID, func() string { return p.opts.TerminalID }); err != nil {
		return err
	}
	switch {
	case mode == MACNone:
		msg.UnsetField(specs.MAC)
		msg.UnsetField(specs.MAC2)
		return nil
	case mode == MACWrong:
		return SignMAC(msg, p.po.MACKey, true)
	case p.po.MACKey != nil:
		return SignMAC(msg, p.po.MACKey, false)
	}
	return nil
}

// exchange sends msg once and waits at most timeout. A nil Exchange means
// nothing was sent.
func (p *POS) exchange(ctx context.Context, msg *iso8583.Message, timeout time.Duration) (*Exchange, error) {
	mti, _ := msg.GetMTI()
	stan, _ := msg.GetString(specs.STAN)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("terminal %s: %s STAN %s not sent: %w", p.opts.TerminalID, mti, stan, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("terminal %s: %s STAN %s not sent: %w", p.opts.TerminalID, mti, stan, err)
	}
	if _, err := msg.Pack(); err != nil {
		return nil, fmt.Errorf("terminal %s: %s STAN %s does not pack: %w", p.opts.TerminalID, mti, stan, err)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.Send(wctx, msg)
	ex := &Exchange{Request: msg, Response: resp, Latency: time.Since(start), Attempts: 1}
	if err == nil {
		return ex, nil
	}
	ex.Response = nil
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, connection.ErrSendTimeout)
	if !timedOut && !errors.Is(err, context.Canceled) {
		// The link broke (or never carried the request): reconnect next time.
		p.drop(c)
	}
	if timedOut {
		ex.Err = fmt.Errorf("terminal %s: %w: %s STAN %s unanswered after %s", p.opts.TerminalID, ErrNoResponse, mti, NormalizeSTAN(stan), timeout)
	} else {
		ex.Err = fmt.Errorf("terminal %s: %w: %s STAN %s: %w", p.opts.TerminalID, ErrNoResponse, mti, NormalizeSTAN(stan), err)
	}
	p.opts.Logger.Info("no response", zap.String("mti", mti), zap.String("stan", stan), zap.Error(err))
	return ex, ex.Err
}

func (p *POS) needsNetCancel(msg *iso8583.Message) bool {
	if p.po.DisableNetCancel {
		return false
	}
	mti, _ := msg.GetMTI()
	return mti == specs.MTIAuthRequest || mti == specs.MTIFinancialRequest
}

// netCancel sends the automatic 0400 for orig, repeating the same message
// until it is answered (at most NetCancelAttempts sends without an answer)
// and, while the switch answers 94 because the original is still in flight
// there, every NetCancelRetryWait for at most the POS's timeout.
func (p *POS) netCancel(ctx context.Context, orig *iso8583.Message) *Exchange {
	rev, err := NewReversalMessage(orig, nil, p.stan.Next(), p.now())
	if err == nil {
		err = p.complete(rev, MACAuto)
	}
	if err != nil {
		return &Exchange{Request: rev, Err: fmt.Errorf("building the net cancel: %w", err)}
	}
	var (
		last       *Exchange
		total      time.Duration
		unanswered int
		patience   = p.now().Add(p.timeout)
	)
	for attempt := 1; ; attempt++ {
		ex, err := p.exchange(ctx, rev, p.timeout)
		if ex == nil {
			ex = &Exchange{Request: rev, Err: err}
		}
		total += ex.Latency
		ex.Latency, ex.Attempts = total, attempt
		last = ex
		if ex.Response == nil {
			unanswered++
			if unanswered >= p.po.NetCancelAttempts || ctx.Err() != nil {
				break
			}
			continue
		}
		if ex.RC() != string(codes.Duplicate) || !p.now().Add(p.po.NetCancelRetryWait).Before(patience) {
			p.record(rev, ex.Response)
			break
		}
		// 94: the switch still waits for the original's answer; ask again.
		select {
		case <-ctx.Done():
		case <-time.After(p.po.NetCancelRetryWait):
		}
		if ctx.Err() != nil {
			break
		}
		total += p.po.NetCancelRetryWait
	}
	p.opts.Logger.Info("net cancel sent", zap.String("rc", last.RC()), zap.Int("attempts", last.Attempts))
	return last
}

// saleKey identifies an original by MTI, STAN and DE 7, as DE 90 names it.
func saleKey(mti, stan, de7 string) string {
	return mti + "/" + NormalizeSTAN(stan) + "/" + de7
}

func msgAmount(m *iso8583.Message, id int) int64 {
	s, _ := m.GetString(id)
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

// record keeps the terminal's view of an answered request: approved sales,
// what remains of them after cancels and refunds, and the batch totals.
func (p *POS) record(req, resp *iso8583.Message) {
	get := func(m *iso8583.Message, id int) string { s, _ := m.GetString(id); return s }
	mti, _ := req.GetMTI()
	approved := get(resp, specs.ResponseCode) == "00"
	proc := get(req, specs.ProcessingCode)
	key := saleKey(mti, get(req, specs.STAN), get(req, specs.TransmissionDateTime))
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case (mti == specs.MTIAuthRequest || mti == specs.MTIFinancialRequest) && !strings.HasPrefix(proc, "20"):
		if _, seen := p.sales[key]; seen {
			return // a repeat of a sale already recorded
		}
		amount := msgAmount(req, specs.Amount)
		p.sales[key] = &sale{amount: amount, remaining: amount, approved: approved,
			rrn: get(resp, specs.RRN), auth: get(resp, specs.ApprovalCode)}
		if approved {
			p.batch.Sales++
			p.batch.SalesAmount += amount
		}
	case mti == specs.MTIFinancialRequest: // refund naming the sale by RRN and approval code
		if !approved || p.counted[key] {
			return
		}
		p.counted[key] = true
		amount := msgAmount(req, specs.Amount)
		p.batch.Refunds++
		p.batch.RefundsAmount += amount
		rrn, auth := get(req, specs.RRN), get(req, specs.ApprovalCode)
		for _, s := range p.sales {
			if s.approved && s.rrn == rrn && s.auth == auth {
				s.remaining -= amount
				break
			}
		}
	case mti == specs.MTIReversal:
		if !approved || p.counted[key] {
			return
		}
		p.counted[key] = true
		de90 := get(req, specs.OriginalData)
		if len(de90) < 20 {
			return
		}
		s := p.sales[saleKey(de90[0:4], de90[4:10], de90[10:20])]
		if s == nil || !s.approved {
			return // a net cancel of a sale that was never approved takes nothing back
		}
		amount := s.remaining
		if de95 := get(req, specs.ReplacementAmounts); len(de95) >= 12 {
			if actual, err := strconv.ParseInt(de95[:12], 10, 64); err == nil {
				amount = s.remaining - actual
			}
		}
		if amount <= 0 {
			return
		}
		s.remaining -= amount
		p.batch.Cancels++
		p.batch.CancelsAmount += amount
	case mti == specs.MTIReconciliation && approved:
		p.batch = BatchTotals{} // the batch is closed; a new one starts
	}
}

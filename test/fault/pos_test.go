package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// card is one test card and the route (issuer) that owns it.
type card struct {
	pan   string
	route string
}

// makeCards returns n Luhn-valid cards under bin.
func makeCards(route, bin string, n int) []card {
	var out []card
	for i := 1; i <= n; i++ {
		partial := fmt.Sprintf("%s%011d", bin, 7000+i*13)
		out = append(out, card{pan: partial + string(pan.CheckDigit(partial)), route: route})
	}
	return out
}

// noAnswer is what a record holds when the terminal never heard back.
const noAnswer = ""

// sale is one purchase as its terminal lived it.
type sale struct {
	terminal string
	seq      int // global sale number
	stan     string
	de7      string
	card     card
	amount   int64
	// rc is the DE 39 the terminal was told ("" = no answer: timeout or
	// connection error).
	rc string
	// afterRestart: sent after switchd's restart.
	afterRestart bool
	// reversal is the terminal's own 0400 for a sale it got no answer to
	// (nil when it got one).
	reversal *giveBack
	// cancel is the merchant's full or partial cancel of an approved sale.
	cancel *giveBack
	// probe: the sale whose partial cancel was in flight when switchd was
	// killed.
	probe bool
}

// giveBack is a 0400 the terminal sent: a merchant cancel (full, or
// partial with DE 95) or a reversal of a sale without answer.
type giveBack struct {
	stan, de7 string
	// remaining is DE 95's amount (what stays charged), -1 without DE 95.
	remaining int64
	// asked is what the 0400 takes back.
	asked int64
	// rc is the final answer (after repeats); attempts counts the sends.
	rc       string
	attempts int
	// unanswered counts sends that got no answer.
	unanswered int
}

func (s *sale) approved() bool { return s.rc == "00" }

// charged is what the customer must end up paying for s, judged only by
// what the terminal was told: an approval the terminal saw, less what its
// cancels answered 00 gave back; nothing for anything else.
func (s *sale) charged() int64 {
	if !s.approved() {
		return 0
	}
	c := s.amount
	if s.cancel != nil && s.cancel.rc == "00" {
		c -= s.cancel.asked
	}
	return c
}

func (s *sale) String() string {
	told := s.rc
	if told == noAnswer {
		told = "no answer"
	}
	out := fmt.Sprintf("sale #%d %s STAN %s DE7 %s %s %s amount %d: terminal told %s", s.seq, s.terminal, s.stan, s.de7,
		s.card.route, pan.Mask(s.card.pan), s.amount, told)
	if s.afterRestart {
		out += " (after restart)"
	}
	if s.probe {
		out += " [kill probe]"
	}
	if g := s.reversal; g != nil {
		out += fmt.Sprintf("; terminal reversal STAN %s answered %q after %d sends (%d unanswered)", g.stan, g.rc, g.attempts, g.unanswered)
	}
	if g := s.cancel; g != nil {
		kind := "full"
		if g.remaining >= 0 {
			kind = fmt.Sprintf("partial (DE 95 %d)", g.remaining)
		}
		out += fmt.Sprintf("; %s cancel of %d STAN %s answered %q after %d sends (%d unanswered)", kind, g.asked, g.stan, g.rc, g.attempts, g.unanswered)
	}
	return out
}

// gate is open while switchd accepts terminals; terminals that lose the
// switch wait on it before they dial again.
type gate struct {
	mu   sync.Mutex
	ch   chan struct{}
	open bool
}

func newGate() *gate {
	ch := make(chan struct{})
	close(ch)
	return &gate{ch: ch, open: true}
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		g.ch, g.open = make(chan struct{}), false
	}
}

func (g *gate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		close(g.ch)
		g.open = true
	}
}

func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hold keeps sales from seq onwards waiting until ch is closed, so every
// fault lands while the load still has work to do.
type hold struct {
	from int
	ch   chan struct{}
}

// probeClaim is handed to the controller by the terminal that takes the
// kill probe: the controller makes the issuer hold its answers, closes
// ready, and the terminal sends a partial cancel of sale.
type probeClaim struct {
	sale  *sale
	ready chan struct{}
}

// fleet is N terminals sharing a bounded number of sales.
type fleet struct {
	addr      string
	cards     []card
	total     int
	cancelPct int
	timeout   time.Duration
	gate      *gate
	holds     []hold
	seed      uint64

	// probeArmed makes the next approved sale on probeRoute the kill
	// probe; its claim goes to probeClaims.
	probeArmed  atomic.Bool
	probeRoute  string
	probeClaims chan probeClaim

	restarted atomic.Bool
	next      atomic.Int64 // next sale number
	completed atomic.Int64 // sales answered or given up on

	mu    sync.Mutex
	sales []*sale
	// approved are copies of the sales approved so far, taken when the
	// approval came (for the attacker, which must not read live sales).
	approved []sale
	errs     []string
}

func (f *fleet) errorf(format string, a ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

// run starts n terminals; the returned channel is closed when all are done.
func (f *fleet) run(ctx context.Context, n int) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.terminal(ctx, i)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// pos is one terminal: its own connection, STANs and rhythm.
type pos struct {
	f     *fleet
	id    string
	opts  terminal.Options
	spec  *iso8583.MessageSpec
	stans *terminal.STANGenerator
	rng   *rand.Rand
	c     *terminal.Client
}

func (f *fleet) terminal(ctx context.Context, i int) {
	p := &pos{
		f:    f,
		id:   fmt.Sprintf("T%07d", i+1),
		spec: specs.MustLoad(specs.TerminalDialect),
		// One STAN sequence per terminal across reconnects: a real POS
		// keeps its trace number in memory, and a reused STAN would be a
		// duplicate to the switch.
		stans: terminal.NewSTANGenerator(1 + i*100_000),
		rng:   rand.New(rand.NewPCG(f.seed, uint64(i))),
	}
	p.opts = terminal.DefaultOptions()
	p.opts.Addr, p.opts.TerminalID, p.opts.Timeout = f.addr, p.id, f.timeout
	defer func() {
		if p.c != nil {
			_ = p.c.Close()
		}
	}()
	for ctx.Err() == nil {
		seq := int(f.next.Add(1))
		if seq > f.total {
			return
		}
		for _, h := range f.holds {
			if seq >= h.from {
				select {
				case <-h.ch:
				case <-ctx.Done():
					return
				}
			}
		}
		p.sale(ctx, seq)
		// A short, varying pause between customers.
		time.Sleep(time.Duration(p.rng.IntN(4)) * time.Millisecond)
	}
}

func (p *pos) sale(ctx context.Context, seq int) {
	f := p.f
	s := &sale{terminal: p.id, seq: seq, card: f.cards[p.rng.IntN(len(f.cards))],
		// Small, distinct amounts: each issuer approval maps back to its sale.
		amount: 1000 + int64(seq), afterRestart: f.restarted.Load()}
	f.mu.Lock()
	f.sales = append(f.sales, s)
	f.mu.Unlock()

	msg, err := terminal.NewPurchaseMessage(p.spec, terminal.Purchase{PAN: s.card.pan, Amount: s.amount}, p.stans.Next(), time.Now(), p.opts)
	if err != nil {
		f.errorf("%s: building sale: %v", p.id, err)
		return
	}
	s.stan, _ = msg.GetString(specs.STAN)
	s.de7, _ = msg.GetString(specs.TransmissionDateTime)
	rc, answered := p.exchange(ctx, msg)
	if answered {
		s.rc = rc
	}
	f.completed.Add(1)
	if !answered {
		// Like a Korean VAN terminal: reverse the sale it has no answer
		// for as soon as the switch is back, until the reversal is
		// answered.
		s.reversal = p.giveBack(ctx, s, -1)
		return
	}
	if !s.approved() {
		return
	}
	f.mu.Lock()
	f.approved = append(f.approved, *s)
	f.mu.Unlock()
	if s.card.route == f.probeRoute && f.probeArmed.CompareAndSwap(true, false) {
		claim := probeClaim{sale: s, ready: make(chan struct{})}
		select {
		case f.probeClaims <- claim:
		case <-ctx.Done():
			return
		}
		select {
		case <-claim.ready:
		case <-ctx.Done():
			return
		}
		s.probe = true
		s.cancel = p.giveBack(ctx, s, s.amount*3/4)
		return
	}
	if p.rng.IntN(100) < f.cancelPct {
		remaining := int64(-1) // full cancel
		if p.rng.IntN(2) == 0 {
			remaining = 1 + p.rng.Int64N(s.amount-1) // partial: this much stays charged
		}
		s.cancel = p.giveBack(ctx, s, remaining)
	}
}

// giveBack sends a 0400 naming sale s (DE 90), with DE 95 when remaining
// >= 0, and repeats the very same message until it is answered: a final
// answer is anything but 94 (the switch still has the original in flight).
func (p *pos) giveBack(ctx context.Context, s *sale, remaining int64) *giveBack {
	g := &giveBack{remaining: remaining, asked: s.amount}
	if remaining >= 0 {
		g.asked = s.amount - remaining
	}
	g.stan = p.stans.Next()
	g.de7 = time.Now().UTC().Format("0102150405")
	m, err := giveBackMessage(p.spec, p.id, p.opts.MerchantID, s, g)
	if err != nil {
		p.f.errorf("%s: %v", p.id, err)
		return g
	}
	deadline := time.Now().Add(45 * time.Second)
	for ctx.Err() == nil {
		g.attempts++
		rc, answered := p.exchange(ctx, m)
		if answered && rc != "94" {
			g.rc = rc
			return g
		}
		if !answered {
			g.unanswered++
		}
		if time.Now().After(deadline) {
			p.f.errorf("%s: 0400 STAN %s for sale #%d never answered (%d sends, last %q)", p.id, g.stan, s.seq, g.attempts, rc)
			return g
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g
}

// exchange sends m on the terminal's connection (dialling, after waiting
// for the gate, when it has none) and returns DE 39; answered is false on
// a timeout or connection error, after which the connection is dropped.
func (p *pos) exchange(ctx context.Context, m *iso8583.Message) (rc string, answered bool) {
	if p.c == nil {
		if err := p.connect(ctx); err != nil {
			return "", false
		}
	}
	resp, err := p.c.Send(ctx, m)
	if err != nil {
		_ = p.c.Close()
		p.c = nil
		return "", false
	}
	rc, _ = resp.GetString(specs.ResponseCode)
	return rc, true
}

func (p *pos) connect(ctx context.Context) error {
	deadline := time.Now().Add(45 * time.Second)
	for {
		if err := p.f.gate.wait(ctx); err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := terminal.Dial(dctx, p.opts)
		cancel()
		if err == nil {
			p.c = c
			return nil
		}
		if errors.Is(err, terminal.ErrConfig) {
			p.f.errorf("%s: %v", p.id, err)
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.f.errorf("%s: cannot reach the switch: %v", p.id, err)
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// giveBackMessage builds the 0400 of g (its STAN and DE 7 set) naming
// sale s in DE 90, with DE 95 for a partial cancel.
func giveBackMessage(spec *iso8583.MessageSpec, terminalID, merchantID string, s *sale, g *giveBack) (*iso8583.Message, error) {
	m := iso8583.NewMessage(spec)
	m.MTI(specs.MTIReversal)
	fields := map[int]string{
		specs.ProcessingCode:       terminal.ProcessingPurchase,
		specs.Amount:               fmt.Sprintf("%012d", s.amount),
		specs.TransmissionDateTime: g.de7,
		specs.STAN:                 g.stan,
		specs.TerminalID:           terminalID,
		specs.MerchantID:           merchantID,
		specs.Currency:             terminal.DefaultCurrency,
		specs.OriginalData:         specs.MTIFinancialRequest + s.stan + s.de7 + strings.Repeat("0", 22),
	}
	if g.remaining >= 0 {
		fields[specs.ReplacementAmounts] = fmt.Sprintf("%012d", g.remaining) + strings.Repeat("0", 30)
	}
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			return nil, fmt.Errorf("building 0400 STAN %s: DE %d: %w", g.stan, id, err)
		}
	}
	return m, nil
}

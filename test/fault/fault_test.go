package fault

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/store"
)

// Load shape.
const (
	terminals    = 8
	totalSales   = 600
	cancelPct    = 20
	bigBalance   = 1_000_000_000 // no sale can ever be declined 51
	posTimeout   = 5 * time.Second
	silentFor    = 1500 * time.Millisecond
	drainTimeout = 60 * time.Second
)

// env is switchd between the two card issuers.
type env struct {
	sw      *switchd
	issuers map[string]*issuer.Issuer
}

// routeBINs are the issuers: two card issuers that take reversals and a
// refund-only prepaid host (gift certificates, local currency) to which
// the switch gives money back by refunds that name their original.
var routeBINs = []struct {
	route, bin string
	refundOnly bool
}{{"card-a", "9410", false}, {"card-b", "9420", false}, {"prepaid", "9430", true}}

// startEnv starts the issuer emulators and switchd, and waits until the
// switch has signed on to both.
func startEnv(t *testing.T, balance int64) *env {
	t.Helper()
	e := &env{}
	var routes []routeSpec
	e.issuers, routes = startIssuers(t, balance)
	e.sw = newSwitchd(t, routes)
	e.sw.start()
	if err := e.sw.waitReady(30*time.Second, "card-a", "card-b", "prepaid"); err != nil {
		t.Fatal(err)
	}
	return e
}

// startIssuers starts the issuer emulators of routeBINs.
func startIssuers(t *testing.T, balance int64) (map[string]*issuer.Issuer, []routeSpec) {
	t.Helper()
	issuers := map[string]*issuer.Issuer{}
	var routes []routeSpec
	for _, rb := range routeBINs {
		is := issuertest.Start(t, issuer.Config{Name: rb.route, Addr: "127.0.0.1:0", BINs: []string{rb.bin}, DefaultBalance: balance,
			Reversals: issuer.Bool(!rb.refundOnly)})
		issuers[rb.route] = is
		routes = append(routes, routeSpec{name: rb.route, bin: rb.bin, issuer: is, refundOnly: rb.refundOnly})
	}
	return issuers, routes
}

// ledgerState is every card's issuer balance plus the issuers' decision
// counters: when it stops changing, nothing is moving money any more.
func (e *env) ledgerState(cards []card) string {
	var b strings.Builder
	for _, c := range cards {
		fmt.Fprintf(&b, "%d,", e.issuers[c.route].Balance(c.pan))
	}
	for _, rb := range routeBINs {
		fmt.Fprintf(&b, "%+v;", e.issuers[rb.route].Stats())
	}
	return b.String()
}

// settle waits until the SAF queue is empty (GET /v1/saf answers []) and
// the issuers' ledgers have not changed for a second.
func (e *env) settle(t *testing.T, cards []card) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	var last, saf string
	var err error
	stableSince := time.Now()
	for {
		if ferr := e.sw.failure(); ferr != nil {
			t.Fatal(ferr)
		}
		saf, err = e.sw.safPending(ctx)
		state := e.ledgerState(cards)
		if err != nil || saf != "[]" || state != last {
			last, stableSince = state, time.Now()
		} else if time.Since(stableSince) >= time.Second {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("SAF queue not drained or balances still moving after %v: GET /v1/saf = %s (error %v)", drainTimeout, saf, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestFaultsUnderLoad runs a bounded load from 8 terminals while the
// refund-only prepaid host goes silent (first losing what it is sent, then
// charging what it does not answer), card-a goes silent (charging), card-b
// drops its link after charging, and switchd is SIGKILLed and restarted;
// then it checks that every card is charged exactly what its terminals
// were told.
func TestFaultsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: starts switchd and runs a load; skipped with -short")
	}
	began := time.Now()
	e := startEnv(t, bigBalance)
	cardA, cardB, prepaid := e.issuers["card-a"], e.issuers["card-b"], e.issuers["prepaid"]
	var cards []card
	for _, rb := range routeBINs {
		cards = append(cards, makeCards(rb.route, rb.bin, 3)...)
	}

	prepaidDone, silentDone, disconnectDone, restartDone := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	f := &fleet{
		addr: e.sw.termAddr, cards: cards, total: totalSales, cancelPct: cancelPct, timeout: posTimeout,
		gate: newGate(), seed: uint64(time.Now().UnixNano()),
		// Each fault starts at a progress mark and later sales wait for
		// it to end, so every fault lands mid-load however fast the load is.
		holds:       []hold{{100, prepaidDone}, {200, silentDone}, {300, disconnectDone}, {450, restartDone}},
		probeRoute:  "card-a",
		probeClaims: make(chan probeClaim, 1),
	}
	t.Logf("seed %d", f.seed)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	loadDone := f.run(ctx, terminals)
	// Identity attacks on the fleet's sales run alongside the load.
	att := newAttacker(f, e.sw.termAddr, e.sw.attackAddr)
	attackCtx, stopAttack := context.WithCancel(ctx)
	attackDone := make(chan struct{})
	go func() { att.run(attackCtx); close(attackDone) }()
	stopLoad := func() {
		cancel()
		<-loadDone
		stopAttack()
		<-attackDone
	}
	defer stopLoad()
	fatal := func(format string, a ...any) {
		t.Helper()
		stopLoad()
		t.Fatalf(format, a...)
	}
	waitCompleted := func(n int64) {
		t.Helper()
		for f.completed.Load() < n {
			select {
			case <-loadDone:
				fatal("load ended after %d sales, before mark %d", f.completed.Load(), n)
			case <-ctx.Done():
				fatal("load stuck at %d sales before mark %d", f.completed.Load(), n)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	// (p) The refund-only prepaid host hangs twice for 1.5 s: first it
	// loses what it is sent (nothing charged: nothing may be given back),
	// then it charges what it does not answer (given back exactly once).
	waitCompleted(30)
	prepaid.SetMode(issuer.Silent)
	time.Sleep(silentFor)
	prepaid.SetFault(issuer.Fault{ChargeWhenSilent: true})
	time.Sleep(silentFor)
	prepaid.SetMode(issuer.Normal)
	prepaid.SetFault(issuer.Fault{})
	close(prepaidDone)

	// (a) card-a hangs for 1.5 s: it approves and charges what it is sent
	// but answers nothing. The switch must answer 91 and reverse.
	waitCompleted(100)
	cardA.SetFault(issuer.Fault{ChargeWhenSilent: true})
	cardA.SetMode(issuer.Silent)
	time.Sleep(silentFor)
	cardA.SetMode(issuer.Normal)
	cardA.SetFault(issuer.Fault{})
	close(silentDone)

	// (b) card-b charges the next sale and drops the link before answering.
	waitCompleted(200)
	cardB.SetFault(issuer.Fault{Disconnect: true})
	for deadline := time.Now().Add(10 * time.Second); cardB.Fault().Disconnect; {
		if time.Now().After(deadline) {
			fatal("card-b's disconnect fault never fired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cardB.SetFault(issuer.Fault{})
	close(disconnectDone)

	// (c) SIGKILL mid-load. The kill lands while a merchant's partial
	// cancel of a card-a sale has been applied by the issuer but not yet
	// answered (card-a holds its answers), together with whatever else is
	// in flight: the window in which a crash must not lose or double money.
	waitCompleted(300)
	f.probeArmed.Store(true)
	var probe *sale
	select {
	case claim := <-f.probeClaims:
		probe = claim.sale
		cardA.SetFault(issuer.Fault{ChargeWhenSilent: true})
		cardA.SetMode(issuer.Silent)
		close(claim.ready)
	case <-time.After(15 * time.Second):
		fatal("no approved card-a sale to probe the kill with")
	}
	applied := false
	for deadline := time.Now().Add(3 * time.Second); !applied && time.Now().Before(deadline); {
		for _, a := range cardA.Approvals() {
			if a.Amount == probe.amount && a.Reversed > 0 {
				applied = true
			}
		}
		if !applied {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if !applied {
		fatal("card-a never applied the partial cancel of probe %s", probe)
	}
	// Let other terminals' card-a requests pile up unanswered (and
	// charged) too, well within the 500 ms in which the switch still waits
	// for the cancel's answer.
	time.Sleep(100 * time.Millisecond)
	f.gate.close()
	inFlightAtKill := f.next.Load() - f.completed.Load()
	killedAt := time.Now()
	e.sw.kill()
	cardA.SetMode(issuer.Normal)
	cardA.SetFault(issuer.Fault{})
	f.restarted.Store(true)
	e.sw.start()
	if err := e.sw.waitReady(30*time.Second, "card-a", "card-b", "prepaid"); err != nil {
		fatal("after the restart: %v", err)
	}
	restartTook := time.Since(killedAt)
	f.gate.reopen()
	close(restartDone)

	select {
	case <-loadDone:
	case <-ctx.Done():
		fatal("load did not finish: %d of %d sales", f.completed.Load(), totalSales)
	}
	loadTook := time.Since(began)
	stopAttack()
	<-attackDone
	for _, msg := range append(f.errs, att.errs...) {
		t.Error(msg)
	}
	t.Logf("identity attacks (answers by DE 39): %s", att.report())
	if att.report() == "" {
		t.Error("no identity attack was answered: the attacker proved nothing")
	}
	if err := e.sw.failure(); err != nil {
		t.Fatal(err)
	}

	e.settle(t, cards)
	settledAfter := time.Since(began)
	balances := map[string]int64{}
	for _, c := range cards {
		balances[c.pan] = e.issuers[c.route].Balance(c.pan)
	}
	approvals := map[string][]issuer.Approval{}
	stats := map[string]issuer.Stats{}
	for _, rb := range routeBINs {
		approvals[rb.route] = e.issuers[rb.route].Approvals()
		stats[rb.route] = e.issuers[rb.route].Stats()
	}

	// The journal is read once switchd has stopped.
	e.sw.stop()
	if r := e.sw.raceReports(); r != "" {
		t.Errorf("switchd's race detector reported:\n%s", r)
	}
	j, err := e.sw.openStore()
	if err != nil {
		t.Fatalf("opening the journal: %v", err)
	}
	defer j.Close()
	jctx := context.Background()

	// Counts.
	var c struct {
		sent, approved, noAnswer, afterRestart                     int
		cancels, partial, cancelsOK, cancelsUnanswered             int
		reversals, reversalsUnanswered                             int
		declined, reversalRCs                                      map[string]int
		safQueued, safDone, safPending, safReview, approvedJournal int
	}
	c.declined, c.reversalRCs = map[string]int{}, map[string]int{}
	for _, s := range f.sales {
		c.sent++
		if s.afterRestart {
			c.afterRestart++
		}
		switch {
		case s.rc == noAnswer:
			c.noAnswer++
		case s.approved():
			c.approved++
		default:
			c.declined[s.rc]++
		}
		if g := s.cancel; g != nil {
			c.cancels++
			if g.remaining >= 0 {
				c.partial++
			}
			if g.rc == "00" {
				c.cancelsOK++
			}
			if g.unanswered > 0 {
				c.cancelsUnanswered++
			}
		}
		if g := s.reversal; g != nil {
			c.reversals++
			c.reversalRCs[g.rc]++
			if g.unanswered > 0 {
				c.reversalsUnanswered++
			}
		}
	}
	for state, n := range map[string]*int{store.SAFDone: &c.safDone, store.SAFPending: &c.safPending, store.SAFReview: &c.safReview} {
		items, err := j.Queue().List(jctx, state)
		if err != nil {
			t.Fatal(err)
		}
		*n = len(items)
		c.safQueued += len(items)
	}
	t.Logf("load: %d terminals, %d sales sent (%d after the restart): %d approved, declined %v, %d no answer",
		terminals, c.sent, c.afterRestart, c.approved, c.declined, c.noAnswer)
	t.Logf("merchant cancels: %d (%d partial), %d answered 00, %d needed repeats after no answer",
		c.cancels, c.partial, c.cancelsOK, c.cancelsUnanswered)
	t.Logf("terminal reversals of sales without answer: %d, answered %v, %d needed repeats", c.reversals, c.reversalRCs, c.reversalsUnanswered)
	t.Logf("kill: %d sales in flight, probe %s; restart to ready took %v", inFlightAtKill, probe, restartTook.Round(time.Millisecond))
	t.Logf("switch SAF queue (journal): %d queued, %d acknowledged, %d pending, %d manual review", c.safQueued, c.safDone, c.safPending, c.safReview)
	for _, rb := range routeBINs {
		st := stats[rb.route]
		t.Logf("issuer %s: approved %d, declined %d; reversals %d (applied %d = %d KRW, nothing left %d, no original %d, duplicate %d, rejected %d); "+
			"refunds credited %d (= %d KRW), not credited: duplicate %d, no original %d, nothing left %d",
			rb.route, st.Approved, st.Declined, st.Reversals, st.ReversalsApplied, st.ReversedAmount, st.ReversalsNothingLeft,
			st.ReversalsNoOriginal, st.ReversalsDuplicate, st.ReversalsRejected,
			st.Refunds, st.RefundedAmount, st.RefundsDuplicate, st.RefundsNoOriginal, st.RefundsNothingLeft)
	}
	t.Logf("timing: load %v, settled at %v", loadTook.Round(time.Millisecond), settledAfter.Round(time.Millisecond))

	// The load really went through the faults.
	if c.afterRestart == 0 || c.noAnswer == 0 || c.declined["91"] == 0 {
		t.Errorf("the faults did not bite: %d sales after the restart, %d without answer, %d answered 91",
			c.afterRestart, c.noAnswer, c.declined["91"])
	}
	if st := stats["prepaid"]; st.Reversals != 0 {
		t.Errorf("the switch sent %d reversals to the refund-only prepaid host", st.Reversals)
	}
	if c.sent != totalSales {
		t.Errorf("%d sales sent, want %d", c.sent, totalSales)
	}

	c.approvedJournal = checkMoney(t, f.sales, cards, balances, approvals, j)
	t.Logf("journal: %d of %d terminal-seen approvals found approved", c.approvedJournal, c.approved)
	if row, err := j.Sales().FindByKey(jctx, store.Key{TerminalID: probe.terminal, STAN: probe.cancel.stan, TxTime: probe.cancel.de7, MTI: specs.MTIReversal}); err == nil {
		events, _ := j.Lookup().Events(jctx, row.ID)
		t.Logf("probe cancel in the journal: %s", strings.Join(events, " | "))
	}
}

// TestReversalOfSaleStillInFlight: a terminal whose sale gets no answer
// in its own time reverses it at once (a net cancel), while the switch is
// still waiting for the issuer's answer, which then approves. The
// terminal is told its reversal is 00, so the customer must not be
// charged.
func TestReversalOfSaleStillInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: starts switchd; skipped with -short")
	}
	const balance = 1_000_000
	e := startEnv(t, balance)
	cardA := e.issuers["card-a"]
	cd := makeCards("card-a", "9410", 1)[0]
	cardA.SetLatency(400 * time.Millisecond) // answers within the route's 500 ms

	opts := terminal.DefaultOptions()
	opts.Addr, opts.TerminalID, opts.Timeout = e.sw.termAddr, "T0000099", posTimeout
	c, err := terminal.Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	spec := specs.MustLoad(specs.TerminalDialect)
	stans := terminal.NewSTANGenerator(1)
	s := &sale{terminal: opts.TerminalID, card: cd, amount: 5000}
	msg, err := terminal.NewPurchaseMessage(spec, terminal.Purchase{PAN: cd.pan, Amount: s.amount}, stans.Next(), time.Now(), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.stan, _ = msg.GetString(specs.STAN)
	s.de7, _ = msg.GetString(specs.TransmissionDateTime)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = c.Send(short, msg)
	cancel()
	if err == nil {
		t.Fatal("the sale was answered within 100 ms although the issuer takes 400 ms: the test proves nothing")
	}
	// The sale has reached the issuer (so it is journaled), whose answer
	// is still 400 ms away: the terminal reverses it now.
	for deadline := time.Now().Add(5 * time.Second); !received(cardA, s.amount); {
		if time.Now().After(deadline) {
			t.Fatal("the sale never reached the issuer")
		}
		time.Sleep(2 * time.Millisecond)
	}
	g := &giveBack{remaining: -1, asked: s.amount, stan: stans.Next(), de7: time.Now().UTC().Format("0102150405")}
	rev, err := giveBackMessage(spec, opts.TerminalID, opts.MerchantID, s, g)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := c.Send(context.Background(), rev)
		if err != nil {
			t.Fatalf("reversal: %v", err)
		}
		g.attempts++
		if g.rc, _ = resp.GetString(specs.ResponseCode); g.rc != "94" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.reversal = g
	if g.rc != "00" {
		t.Logf("reversal answered %s: the terminal does not count on it", g.rc)
	}
	e.settle(t, []card{cd})
	charged := balance - cardA.Balance(cd.pan)
	approvals := cardA.Approvals()
	e.sw.stop()
	j, err := e.sw.openStore()
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	t.Logf("%s", s)
	if g.rc == "00" && charged != 0 {
		t.Errorf("the terminal's reversal was answered 00 while its sale was in flight, yet the customer is charged %d\n\tissuer: %s\n\tjournal: %s",
			charged, describeApprovals(approvals), describeJournal(context.Background(), j, s))
	}
}

// received reports whether the issuer has received a 0200 for amount.
func received(is *issuer.Issuer, amount int64) bool {
	for _, r := range is.Received() {
		if r.MTI == specs.MTIFinancialRequest && r.Fields[specs.Amount] == fmt.Sprintf("%012d", amount) {
			return true
		}
	}
	return false
}

func describeApprovals(list []issuer.Approval) string {
	if len(list) == 0 {
		return "no approval"
	}
	var parts []string
	for _, a := range list {
		parts = append(parts, fmt.Sprintf("approval STAN %s DE7 %s RRN %s amount %d reversed %d remaining %d",
			a.STAN, a.TransmissionDateTime, a.RRN, a.Amount, a.Reversed, a.Remaining))
	}
	return strings.Join(parts, "; ")
}

// describeJournal shows the journal rows of a sale and of its 0400s, with
// their events.
func describeJournal(ctx context.Context, j store.Store, s *sale) string {
	var parts []string
	show := func(what string, k store.Key) {
		row, err := j.Sales().FindByKey(ctx, k)
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", what, err))
			return
		}
		events, _ := j.Lookup().Events(ctx, row.ID)
		parts = append(parts, fmt.Sprintf("%s #%d state %s rc %q amount %d remaining %d issuer STAN %s; events: %s",
			what, row.ID, row.State, row.RC, row.Amount, row.Remaining, row.IssuerSTAN, strings.Join(events, " | ")))
	}
	show("sale", store.Key{TerminalID: s.terminal, STAN: s.stan, TxTime: s.de7, MTI: specs.MTIFinancialRequest})
	for what, g := range map[string]*giveBack{"cancel": s.cancel, "reversal": s.reversal} {
		if g != nil {
			show(what, store.Key{TerminalID: s.terminal, STAN: g.stan, TxTime: g.de7, MTI: specs.MTIReversal})
		}
	}
	sort.Strings(parts[1:])
	return strings.Join(parts, "\n\t\t")
}

package issuer

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/iso/frame"
)

// Fault injects the failures the switch's net-cancel (망취소) and
// robustness tests need. It applies to every request except network
// management (0800), which is always answered at once so the link stays
// signed on.
//
// DropPercent, GarbagePercent and WrongSTANPercent are shares of one draw
// per request (their sum is at most 100): a request is dropped, answered
// with garbage, answered with a wrong STAN, or answered normally. LateBy
// applies on top, to LatePercent of the answers. Garbage and wrong-STAN
// answers are to requests that were applied (the purchase is charged):
// only the answer is broken.
//
// In YAML (Config.Fault, key fault, and each schedule window's fault):
//
//	fault: {drop_percent: 10, garbage_percent: 5, wrong_stan_percent: 5,
//	        late_by: 2s, late_percent: 20, disconnect: false, charge_when_silent: true}
type Fault struct {
	// DropPercent (0-100) is the share of requests read and never
	// answered, chosen at random: Silent for a share of the traffic.
	DropPercent int `yaml:"drop_percent"`
	// GarbagePercent (0-100) is the share of requests answered with random
	// bytes inside a valid length header instead of a message. The first
	// byte is never an ASCII digit, so the frame has no readable MTI and a
	// frame.Codec reader treats it as undecodable and ends the connection.
	GarbagePercent int `yaml:"garbage_percent"`
	// WrongSTANPercent (0-100) is the share of requests answered with DE 11
	// changed to another value: a client matching responses by STAN finds
	// no request for it and times out.
	WrongSTANPercent int `yaml:"wrong_stan_percent"`
	// LateBy delays answers by this much on top of the latency.
	LateBy time.Duration `yaml:"late_by"`
	// LatePercent (0-100) is the share of answers LateBy delays; 0 means
	// every answer.
	LatePercent int `yaml:"late_percent"`
	// Disconnect closes the connection upon the next authorisation or
	// financial request (0100/0200) after processing it: the request IS
	// applied (a purchase is charged), then the link drops before the
	// answer is sent. It fires once and then clears itself (once per
	// window in a schedule).
	Disconnect bool `yaml:"disconnect"`
	// ChargeWhenSilent decides what an unanswered request (Silent mode or
	// DropPercent) does: true processes it (a purchase is approved and
	// charged, a reversal credited) and only the answer is lost, the
	// realistic lost-response case the switch must reverse; false (the
	// default) leaves it unapplied, a request lost on the way in.
	ChargeWhenSilent bool `yaml:"charge_when_silent"`
}

// Validate checks that every percentage lies in 0-100, that drop, garbage
// and wrong STAN add up to at most 100 and that LateBy is not negative.
func (f Fault) Validate() error {
	for _, p := range []struct {
		name string
		v    int
	}{{"drop_percent", f.DropPercent}, {"garbage_percent", f.GarbagePercent},
		{"wrong_stan_percent", f.WrongSTANPercent}, {"late_percent", f.LatePercent}} {
		if p.v < 0 || p.v > 100 {
			return fmt.Errorf("fault %s %d is not a percentage 0-100", p.name, p.v)
		}
	}
	if sum := f.DropPercent + f.GarbagePercent + f.WrongSTANPercent; sum > 100 {
		return fmt.Errorf("fault drop, garbage and wrong STAN percentages add up to %d > 100", sum)
	}
	if f.LateBy < 0 {
		return fmt.Errorf("fault late_by %s is negative", f.LateBy)
	}
	return nil
}

// clamped returns f with every percentage in 0-100, garbage then wrong
// STAN trimmed so that the three shares add up to at most 100, and LateBy
// not negative.
func (f Fault) clamped() Fault {
	pc := func(p int) int { return min(max(p, 0), 100) }
	f.DropPercent = pc(f.DropPercent)
	f.GarbagePercent = min(pc(f.GarbagePercent), 100-f.DropPercent)
	f.WrongSTANPercent = min(pc(f.WrongSTANPercent), 100-f.DropPercent-f.GarbagePercent)
	f.LatePercent = pc(f.LatePercent)
	f.LateBy = max(f.LateBy, 0)
	return f
}

// faultFields are f's log fields.
func faultFields(f Fault) []zap.Field {
	return []zap.Field{
		zap.Int("drop_percent", f.DropPercent), zap.Int("garbage_percent", f.GarbagePercent),
		zap.Int("wrong_stan_percent", f.WrongSTANPercent),
		zap.Duration("late_by", f.LateBy), zap.Int("late_percent", f.LatePercent),
		zap.Bool("disconnect", f.Disconnect), zap.Bool("charge_when_silent", f.ChargeWhenSilent),
	}
}

// SetFault replaces the issuer's base fault injection for later requests
// (percentages clamped as Fault.Validate wants them); Fault{} turns it
// off. A schedule window in force takes precedence (SetSchedule).
func (is *Issuer) SetFault(f Fault) {
	f = f.clamped()
	is.faultMu.Lock()
	is.fault = f
	is.faultMu.Unlock()
	is.log.Info("issuer fault set", faultFields(f)...)
}

// Fault returns the base fault injection (Disconnect is false again once
// it has fired). ActiveFault is what applies now, schedule included.
func (is *Issuer) Fault() Fault {
	is.faultMu.Lock()
	defer is.faultMu.Unlock()
	return is.fault
}

// decision is faultFor's verdict on one request.
type decision struct {
	fault      Fault // the fault in force
	unanswered bool  // Silent or a DropPercent draw
	disconnect bool  // drop the link instead of answering
	garbage    bool  // answer with garbage bytes
	wrongSTAN  bool  // answer with DE 11 altered
	late       time.Duration
}

// faultFor decides the fault treatment of one request with the fault in
// force now: a pending Disconnect (consumed here, for 0100/0200 only), one
// draw among drop, garbage and wrong STAN, one draw for LatePercent.
func (is *Issuer) faultFor(financial bool) decision {
	is.faultMu.Lock()
	f, window := is.activeFaultLocked()
	var d decision
	if financial && f.Disconnect {
		is.consumeDisconnectLocked(window)
		d.disconnect = true
	}
	is.faultMu.Unlock()
	d.fault = f
	if band := f.DropPercent + f.GarbagePercent + f.WrongSTANPercent; band > 0 {
		var u int
		is.rng.with(func(r *rand.Rand) { u = r.IntN(100) })
		switch {
		case u < f.DropPercent:
			d.unanswered = true
		case u < f.DropPercent+f.GarbagePercent:
			d.garbage = true
		case u < band:
			d.wrongSTAN = true
		}
	}
	if is.Mode() == Silent {
		d.unanswered = true
	}
	if f.LateBy > 0 && (f.LatePercent == 0 || is.rng.percent(f.LatePercent)) {
		d.late = f.LateBy
	}
	return d
}

// garbageFrame returns a length header and 8-64 random bytes whose first
// byte is not an ASCII digit (no readable MTI).
func (is *Issuer) garbageFrame() []byte {
	var body []byte
	is.rng.with(func(r *rand.Rand) {
		body = make([]byte, 8+r.IntN(57))
		for i := range body {
			body[i] = byte(r.Uint32())
		}
	})
	if body[0] >= '0' && body[0] <= '9' {
		body[0] |= 0x80
	}
	out, err := frame.AppendFrame(is.header, nil, body)
	if err != nil {
		return nil // unreachable: 64 bytes fit every header
	}
	return out
}

// otherSTAN returns a six-digit STAN other than stan (numerically).
func (is *Issuer) otherSTAN(stan string) string {
	n, _ := strconv.Atoi(stan)
	var off int
	is.rng.with(func(r *rand.Rand) { off = 1 + r.IntN(999_999) })
	return fmt.Sprintf("%06d", (n+off)%1_000_000)
}

// Stats counts the issuer's decisions since it started.
type Stats struct {
	// Approved counts approved purchases and authorisations.
	Approved int `json:"approved"`
	// Declined counts authorisation and financial requests (refunds
	// included) answered with anything but 00.
	Declined int `json:"declined"`
	// Reversals counts every reversal decided (0400, 0420, 0421):
	// ReversalsApplied + ReversalsNothingLeft + ReversalsNoOriginal +
	// ReversalsDuplicate + ReversalsRejected.
	Reversals int `json:"reversals"`
	// ReversalsApplied credited an account.
	ReversalsApplied int `json:"reversals_applied"`
	// ReversalsNothingLeft found their original already fully reversed.
	ReversalsNothingLeft int `json:"reversals_nothing_left"`
	// ReversalsNoOriginal found no approval to reverse (unknown or declined
	// original); they were answered 00 without a balance change.
	ReversalsNoOriginal int `json:"reversals_no_original"`
	// ReversalsDuplicate were already decided (same DE 11 + DE 7, or a 0421
	// repeating a 0420); answered 00 again without a balance change.
	ReversalsDuplicate int `json:"reversals_duplicate"`
	// ReversalsRejected were answered 12 (issuer takes no reversals) or 30
	// (no DE 90 or DE 4).
	ReversalsRejected int `json:"reversals_rejected"`
	// ReversedAmount is the total credited by reversals.
	ReversedAmount int64 `json:"reversed_amount"`
	// Refunds counts refunds (0200, DE 3 20xxxx) that credited an
	// account: standalone ones, and refunds by reference (DE 90) from what
	// remained of their original. Repeats are not counted here.
	Refunds int `json:"refunds"`
	// RefundedAmount is the total credited by refunds.
	RefundedAmount int64 `json:"refunded_amount"`
	// RefundsDuplicate were already decided (same DE 11 + DE 7): answered
	// with the first decision's DE 39 and DE 38, not applied again.
	RefundsDuplicate int `json:"refunds_duplicate"`
	// RefundsNoOriginal are refunds by reference that found no applied
	// sale (unknown, declined, never applied or forgotten): answered 25.
	RefundsNoOriginal int `json:"refunds_no_original"`
	// RefundsNothingLeft are refunds by reference whose original had been
	// given back in full already: answered 25.
	RefundsNothingLeft int `json:"refunds_nothing_left"`
	// RefundsNotCaptured are refunds by reference naming an authorisation
	// (0100) instead of a sale: answered 12.
	RefundsNotCaptured int `json:"refunds_not_captured"`
}

// counters holds Stats as atomics.
type counters struct {
	approved, declined atomic.Int64
	reversals, reversalsApplied, reversalsNothingLeft, reversalsNoOriginal,
	reversalsDuplicate, reversalsRejected, reversedAmount atomic.Int64
	refunds, refundedAmount, refundsDuplicate, refundsNoOriginal,
	refundsNothingLeft, refundsNotCaptured atomic.Int64
}

// refundCount is the counter of refunds that had outcome o.
func (c *counters) refundCount(o refundOutcome) *atomic.Int64 {
	return [...]*atomic.Int64{
		refundCredited:    &c.refunds,
		refundNoOriginal:  &c.refundsNoOriginal,
		refundNothingLeft: &c.refundsNothingLeft,
		refundNotCaptured: &c.refundsNotCaptured,
		refundDuplicate:   &c.refundsDuplicate,
	}[o]
}

// reversalCount is the counter of reversals that had outcome o.
func (c *counters) reversalCount(o reversalOutcome) *atomic.Int64 {
	return [...]*atomic.Int64{
		reversalApplied:     &c.reversalsApplied,
		reversalNothingLeft: &c.reversalsNothingLeft,
		reversalNoOriginal:  &c.reversalsNoOriginal,
		reversalDuplicate:   &c.reversalsDuplicate,
	}[o]
}

func (c *counters) snapshot() Stats {
	return Stats{
		Approved:             int(c.approved.Load()),
		Declined:             int(c.declined.Load()),
		Reversals:            int(c.reversals.Load()),
		ReversalsApplied:     int(c.reversalsApplied.Load()),
		ReversalsNothingLeft: int(c.reversalsNothingLeft.Load()),
		ReversalsNoOriginal:  int(c.reversalsNoOriginal.Load()),
		ReversalsDuplicate:   int(c.reversalsDuplicate.Load()),
		ReversalsRejected:    int(c.reversalsRejected.Load()),
		ReversedAmount:       c.reversedAmount.Load(),
		Refunds:              int(c.refunds.Load()),
		RefundedAmount:       c.refundedAmount.Load(),
		RefundsDuplicate:     int(c.refundsDuplicate.Load()),
		RefundsNoOriginal:    int(c.refundsNoOriginal.Load()),
		RefundsNothingLeft:   int(c.refundsNothingLeft.Load()),
		RefundsNotCaptured:   int(c.refundsNotCaptured.Load()),
	}
}

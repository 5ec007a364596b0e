package issuer

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Fault injects the failures the switch's net-cancel (망취소) tests need.
// It applies to every request except network management (0800), which is
// always answered at once so the link stays signed on.
type Fault struct {
	// DropPercent (0-100) is the share of requests read and never
	// answered, chosen at random: Silent for a share of the traffic.
	DropPercent int `json:"drop_percent"`
	// LateBy delays responses by this much on top of the latency.
	LateBy time.Duration `json:"late_by"`
	// Disconnect closes the connection upon the next authorisation or
	// financial request (0100/0200) after processing it: the request IS
	// applied (a purchase is charged), then the link drops before the
	// answer is sent. It fires once and then clears itself.
	Disconnect bool `json:"disconnect"`
	// ChargeWhenSilent decides what an unanswered request (Silent mode or
	// DropPercent) does: true processes it (a purchase is approved and
	// charged, a reversal credited) and only the answer is lost, the
	// realistic lost-response case the switch must reverse; false (the
	// default) leaves it unapplied, a request lost on the way in.
	ChargeWhenSilent bool `json:"charge_when_silent"`
}

// SetFault replaces the issuer's fault injection for later requests;
// Fault{} turns it off.
func (is *Issuer) SetFault(f Fault) {
	f.DropPercent = min(max(f.DropPercent, 0), 100)
	f.LateBy = max(f.LateBy, 0)
	is.faultMu.Lock()
	is.fault = f
	is.faultMu.Unlock()
	is.log.Info("issuer fault set",
		zap.Int("drop_percent", f.DropPercent), zap.Duration("late_by", f.LateBy),
		zap.Bool("disconnect", f.Disconnect), zap.Bool("charge_when_silent", f.ChargeWhenSilent))
}

// Fault returns the current fault injection (Disconnect is false again
// once it has fired).
func (is *Issuer) Fault() Fault {
	is.faultMu.Lock()
	defer is.faultMu.Unlock()
	return is.fault
}

// faultFor decides the fault treatment of one request: whether its answer
// is lost (Silent or a DropPercent draw), whether the link drops after it
// (a pending Disconnect, consumed here, for 0100/0200 only), and the
// current fault settings.
func (is *Issuer) faultFor(financial bool) (f Fault, unanswered, disconnect bool) {
	is.faultMu.Lock()
	f = is.fault
	if financial && f.Disconnect {
		is.fault.Disconnect = false
		disconnect = true
	}
	is.faultMu.Unlock()
	unanswered = is.Mode() == Silent || (f.DropPercent > 0 && rand.IntN(100) < f.DropPercent)
	return f, unanswered, disconnect
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
	// Refunds counts approved refunds (0200, DE 3 20xxxx).
	Refunds int `json:"refunds"`
	// RefundedAmount is the total credited by refunds.
	RefundedAmount int64 `json:"refunded_amount"`
}

// counters holds Stats as atomics.
type counters struct {
	approved, declined, reversals, reversalsApplied, reversalsNothingLeft,
	reversalsNoOriginal, reversalsDuplicate, reversalsRejected, refunds atomic.Int64
	reversedAmount, refundedAmount atomic.Int64
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
	}
}

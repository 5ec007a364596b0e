package issuer

import (
	"strings"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// refundOutcome is what a refund did.
type refundOutcome int

const (
	// refundCredited credited the account: a standalone refund, or a
	// refund by reference from what remained of its original.
	refundCredited refundOutcome = iota
	// refundNoOriginal found no applied sale to refund (unknown, declined,
	// never applied or forgotten original): 25.
	refundNoOriginal
	// refundNothingLeft found the original fully given back already by
	// other reversals or refunds: 25.
	refundNothingLeft
	// refundNotCaptured named an authorisation (0100), which is released
	// by a reversal, not refunded: 12.
	refundNotCaptured
	// refundDuplicate is a refund already decided (same DE 11 + DE 7),
	// answered as the first time and not applied again.
	refundDuplicate
)

func (o refundOutcome) String() string {
	switch o {
	case refundCredited:
		return "credited"
	case refundNoOriginal:
		return "no_original"
	case refundNothingLeft:
		return "nothing_left"
	case refundNotCaptured:
		return "not_captured"
	case refundDuplicate:
		return "duplicate"
	}
	return "unknown"
}

// refundRequest is a refund (0200, DE 3 20xxxx) as the ledger needs it.
type refundRequest struct {
	self   string // the refund's own DE 11 + DE 7 ("" when absent)
	byRef  bool   // DE 90 names the original: a refund by reference
	orig   string // the original's DE 11 + DE 7 from DE 90
	rrn    string // DE 37
	pan    string // DE 2
	amount int64  // DE 4
}

// refundResult is the ledger's decision on a refund: the answer (DE 39,
// DE 38) a repeat gets again.
type refundResult struct {
	outcome  refundOutcome
	rc       codes.Code
	approval string
	credited int64    // credited now
	balance  int64    // the account's balance after the decision
	original Approval // the original found (zero when none)
}

// refund decides a refund of amount to card (already checked: the
// issuer's card, PIN and amount). Without DE 90 it stands on its own and
// DE 4 is credited. With DE 90 it is a refund by reference: the original
// sale it names (DE 90's STAN and DE 7 as the issuer received them, DE 37
// as the fallback, same card) gets min(DE 4, what remains of it) credited
// back, answered 00; 25 when there is nothing to refund (no such applied
// sale, or all of it given back already), 12 when the original is an
// authorisation, 30 when DE 90 is malformed. Either way a refund is
// applied at most once: a repeat (same DE 11 + DE 7) gets the first
// decision's DE 39 and DE 38 and no credit.
func (is *Issuer) refund(rec Received, card string, amount int64) (codes.Code, string) {
	log := is.log.With(zap.String("stan", rec.STAN), zap.String("pan", pan.Mask(card)),
		zap.Int64("amount", amount))
	r := refundRequest{self: ownKey(rec), rrn: strings.TrimSpace(rec.Fields[specs.RRN]), pan: card, amount: amount}
	var orig originalRef
	if de90, ok := rec.Fields[specs.OriginalData]; ok {
		if orig, ok = parseOriginalData(de90); !ok {
			log.Info("refund refused: DE 90 malformed", zap.String("de90", de90))
			return codes.FormatError, ""
		}
		r.byRef, r.orig = true, orig.key()
		log = log.With(orig.logFields()...)
	}
	log = log.With(zap.String("rrn", r.rrn), zap.Bool("by_reference", r.byRef))
	res := is.ledger.refund(r, is.nextApprovalCode)
	is.stats.refundCount(res.outcome).Add(1)
	if res.outcome == refundCredited {
		is.stats.refundedAmount.Add(res.credited)
		log.Info("refund credited", zap.Int64("credited", res.credited), zap.Int64("balance", res.balance),
			zap.Int64("remaining", res.original.Remaining))
	} else {
		log.Info("refund not credited", zap.Stringer("outcome", res.outcome),
			zap.String("response_code", res.rc.String()), zap.Int64("remaining", res.original.Remaining))
	}
	return res.rc, res.approval
}

// refund decides a refund once: a refund already decided (its own DE 11 +
// DE 7) gets that decision again, as a duplicate, without a credit. code
// gives the approval code of a credit.
func (l *ledger) refund(r refundRequest, code func() string) refundResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.refunds.get(r.self); ok {
		prev.outcome, prev.credited, prev.balance = refundDuplicate, 0, l.balanceLocked(r.pan)
		return prev
	}
	res := l.applyRefundLocked(r, code)
	l.refunds.put(r.self, res)
	return res
}

// applyRefundLocked is refund's decision, with l.mu held.
func (l *ledger) applyRefundLocked(r refundRequest, code func() string) refundResult {
	refuse := func(o refundOutcome, rc codes.Code, a *Approval) refundResult {
		res := refundResult{outcome: o, rc: rc, balance: l.balanceLocked(r.pan)}
		if a != nil {
			res.original = *a
		}
		return res
	}
	credit := r.amount
	var original Approval
	if r.byRef {
		a := l.findOriginal(r.orig, r.rrn, r.pan)
		switch {
		case a == nil:
			return refuse(refundNoOriginal, codes.OriginalNotFound, nil)
		case a.MTI != specs.MTIFinancialRequest:
			return refuse(refundNotCaptured, codes.InvalidTxn, a)
		case a.Remaining <= 0:
			return refuse(refundNothingLeft, codes.OriginalNotFound, a)
		}
		credit = min(r.amount, a.Remaining)
		a.Refunded += credit
		a.Remaining -= credit
		original = *a
	}
	balance := l.balanceLocked(r.pan) + credit
	l.available[r.pan] = balance
	return refundResult{outcome: refundCredited, rc: codes.Approved, approval: code(),
		credited: credit, balance: balance, original: original}
}

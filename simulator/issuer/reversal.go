package issuer

import (
	"strings"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// DE 90 (original data elements, n 42): original MTI (4), STAN (6),
// transmission date and time (10), acquiring and forwarding institution
// ids (11 each, zero-filled). The issuer needs the first 20 digits.
const (
	de90MTIEnd  = 4
	de90STANEnd = 10
	de90DTEnd   = 20
)

// isReversal reports whether mti is a reversal request, advice or repeat.
func isReversal(mti string) bool {
	return mti == specs.MTIReversal || mti == specs.MTIReversalAdvice || mti == specs.MTIReversalRepeat
}

// originalRef is the original sale a give-back names in DE 90.
type originalRef struct{ mti, stan, dateTime string }

// parseOriginalData reads DE 90: at least the first 20 digits (original
// MTI, STAN, DE 7), digits only.
func parseOriginalData(de90 string) (originalRef, bool) {
	if len(de90) < de90DTEnd || !allDigits(de90) {
		return originalRef{}, false
	}
	return originalRef{de90[:de90MTIEnd], de90[de90MTIEnd:de90STANEnd], de90[de90STANEnd:de90DTEnd]}, true
}

// key is the original's look-up key in the ledger.
func (o originalRef) key() string { return origKey(o.stan, o.dateTime) }

// logFields describes the original in a log line.
func (o originalRef) logFields() []zap.Field {
	return []zap.Field{zap.String("original_mti", o.mti), zap.String("original_stan", o.stan),
		zap.String("original_date_time", o.dateTime)}
}

// ownKey is a request's own identity, DE 11 + DE 7, under which its
// decision is remembered; "" when either is absent.
func ownKey(rec Received) string {
	stan, dt := rec.Fields[specs.STAN], rec.Fields[specs.TransmissionDateTime]
	if stan == "" || dt == "" {
		return ""
	}
	return origKey(stan, dt)
}

// reverse decides a reversal (0400, 0420, 0421) the way approval hosts do:
// the original approval named by DE 90 (its STAN and DE 7 as the issuer
// received them; DE 37 as the fallback) gets min(DE 4, what remains of it)
// credited back. The answer is 00 whatever there was to reverse (nothing
// for an unknown or declined original, nothing again for a repeat), 12
// when the issuer takes no reversals, 30 without a usable DE 90 or DE 4.
func (is *Issuer) reverse(rec Received) codes.Code {
	is.stats.reversals.Add(1)
	log := is.log.With(zap.String("mti", rec.MTI), zap.String("stan", rec.STAN),
		zap.String("pan", pan.Mask(rec.Fields[specs.PAN])))
	if !is.reversals {
		is.stats.reversalsRejected.Add(1)
		log.Info("reversal refused: this issuer takes refunds, not reversals")
		return codes.InvalidTxn
	}
	orig, origOK := parseOriginalData(rec.Fields[specs.OriginalData])
	amount, amountOK := parseAmount(rec.Fields[specs.Amount])
	if !origOK || !amountOK {
		is.stats.reversalsRejected.Add(1)
		log.Info("reversal refused: DE 90 or DE 4 missing or malformed",
			zap.String("de90", rec.Fields[specs.OriginalData]), zap.String("amount", rec.Fields[specs.Amount]))
		return codes.FormatError
	}
	r := reversal{
		repeat: rec.MTI == specs.MTIReversalRepeat,
		advice: rec.MTI != specs.MTIReversal,
		self:   ownKey(rec),
		orig:   orig.key(),
		rrn:    strings.TrimSpace(rec.Fields[specs.RRN]),
		pan:    rec.Fields[specs.PAN],
		amount: amount,
	}
	res := is.ledger.reverse(r)
	is.stats.reversalCount(res.outcome).Add(1)
	if res.outcome == reversalApplied {
		is.stats.reversedAmount.Add(res.reversed)
	}
	log.Info("reversal decided", append(orig.logFields(),
		zap.Stringer("outcome", res.outcome),
		zap.String("rrn", r.rrn),
		zap.Int64("amount", amount), zap.Int64("reversed", res.reversed),
		zap.Int64("remaining", res.original.Remaining))...)
	return codes.Approved
}

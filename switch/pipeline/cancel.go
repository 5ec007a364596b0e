package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
)

// originalRef is what DE 90 names: the original's MTI, STAN and DE 7.
type originalRef struct{ MTI, STAN, TxTime string }

func parseDE90(v string) (originalRef, bool) {
	if len(v) != 42 || !digits(v) {
		return originalRef{}, false
	}
	return originalRef{MTI: v[0:4], STAN: v[4:10], TxTime: v[10:20]}, true
}

// cancelAmount is what a 0400 takes off a sale with `remaining` left: all
// of it, or with DE 95 (replacement amounts) down to DE 95's actual
// transaction amount.
func cancelAmount(t *Txn, remaining int64) (int64, error) {
	de95, _ := t.Request.GetString(specs.ReplacementAmounts)
	if de95 == "" {
		return remaining, nil
	}
	if len(de95) < 12 || !digits(de95[:12]) {
		return 0, Declinef(ErrFormat, "DE 95 does not start with a 12-digit amount")
	}
	actual, _ := strconv.ParseInt(de95[:12], 10, 64)
	if actual >= remaining {
		return 0, Declinef(ErrInvalidAmount, "DE 95 leaves %d of %d remaining: nothing to cancel", actual, remaining)
	}
	return remaining - actual, nil
}

// isRefund reports whether t is a refund: a 0200 with transaction type 20.
func isRefund(t *Txn) bool {
	proc, _ := t.Request.GetString(specs.ProcessingCode)
	return t.MTI == specs.MTIFinancialRequest && strings.HasPrefix(proc, specs.ProcRefund)
}

// GiveBack handles what gives money back (the outcome stage of the
// give-back list): a merchant cancel or a lost-response reversal (0400
// naming the sale in DE 90, partial with DE 95) and a refund (0200 with
// processing code 20 naming the sale by RRN and approval code).
// The original is found in the journal only within the request's listener,
// terminal, merchant and MAC key, in its currency (and, for a refund, to
// its card); anything else is 25, exactly as for a sale that does not
// exist. More than remains is 13; an exact repeat gets the stored answer,
// a same-key request with other content 94; the issuer gets the original
// PAN from the journal, also when the sale was paid with a one-time token
// that is consumed; a sale that was declined or never reached the issuer
// is answered 00 without bothering the issuer. The cancel row and the
// amount it reserves are one journal step; the issuer leg after this stage
// sends the give-back, and its outcome is journaled here before the
// terminal hears it.
func GiveBack(l Ledger) Stage {
	return Stage{Name: "giveback", Role: RoleRecordOutcome, Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			refund := isRefund(t)
			key := KeyOf(t)
			if stored, err := l.Sales.FindByKey(ctx, key); err == nil {
				return l.answerRepeat(ctx, t, stored)
			}
			var orig store.Txn
			var err error
			if refund {
				orig, err = l.findRefunded(ctx, t)
			} else {
				orig, err = l.findCancelled(ctx, t)
			}
			if err != nil {
				return l.refuse(ctx, t, key, err)
			}
			sending, err := l.giveBack(ctx, t, key, orig, refund)
			if !sending {
				return err
			}
			return l.giveBackOutcome(ctx, t, next.Handle(ctx, t))
		})
	}}
}

// notFound is the answer for every original outside the request's reach:
// the terminal cannot tell "not there" from "not yours".
func notFound(format string, a ...any) error {
	return Declinef(ErrOriginalNotFound, "no matching original: "+format, a...)
}

// findCancelled finds the sale (or authorisation) a 0400 names in DE 90,
// within the cancel's scope and, when the cancel carries DE 49, currency.
func (l Ledger) findCancelled(ctx context.Context, t *Txn) (store.Txn, error) {
	de90, _ := t.Request.GetString(specs.OriginalData)
	ref, ok := parseDE90(de90)
	if !ok {
		return store.Txn{}, Declinef(ErrFormat, "DE 90 is not 42 digits")
	}
	orig, err := l.GiveBacks.FindOriginal(ctx, l.scope(t), ref.MTI, ref.STAN, ref.TxTime)
	if errors.Is(err, store.ErrNotFound) {
		return store.Txn{}, notFound("%s STAN %s at %s in this listener, terminal and merchant", ref.MTI, ref.STAN, ref.TxTime)
	}
	if err != nil {
		return store.Txn{}, err
	}
	if cur, _ := t.Request.GetString(specs.Currency); cur != "" && cur != orig.Currency {
		return store.Txn{}, notFound("transaction %d is in another currency", orig.ID)
	}
	return orig, nil
}

// findRefunded finds the approved sale a refund names by RRN (DE 37) and
// approval code (DE 38) within the refund's scope, in its currency, paid
// with the card the refund presents. Two sales matching the reference are
// ambiguous: 25, the terminal cannot say which it means (it may refund by
// a cancel naming the sale in DE 90). An authorisation hold was never
// captured: nothing to refund, 12.
func (l Ledger) findRefunded(ctx context.Context, t *Txn) (store.Txn, error) {
	rrn, _ := t.Request.GetString(specs.RRN)
	auth, _ := t.Request.GetString(specs.ApprovalCode)
	if rrn == "" || auth == "" {
		return store.Txn{}, Declinef(ErrFormat, "refund without the original's RRN (DE 37) and approval code (DE 38)")
	}
	orig, err := l.GiveBacks.FindSale(ctx, l.scope(t), rrn, auth)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Txn{}, notFound("no approved sale with that RRN and approval code in this listener, terminal and merchant")
	case errors.Is(err, store.ErrAmbiguous):
		return store.Txn{}, notFound("more than one approved sale with that RRN and approval code")
	case err != nil:
		return store.Txn{}, err
	}
	if cur, _ := t.Request.GetString(specs.Currency); cur != orig.Currency {
		return store.Txn{}, notFound("transaction %d is in another currency", orig.ID)
	}
	if orig.Token == "" && len(orig.PANCiphertext) == 0 {
		return store.Txn{}, notFound("transaction %d has no card on record", orig.ID)
	}
	same, err := l.sameCard(ctx, t.PAN, orig)
	if err != nil {
		return store.Txn{}, err
	}
	if !same {
		return store.Txn{}, notFound("transaction %d was paid with another card", orig.ID)
	}
	if orig.MTI == specs.MTIAuthRequest {
		return store.Txn{}, Declinef(ErrInvalidTxn, "transaction %d is an authorisation hold, never captured: cancel it (0400) instead of refunding", orig.ID)
	}
	return orig, nil
}

// refuse journals a cancel the switch answers itself without a change.
func (l Ledger) refuse(ctx context.Context, t *Txn, key store.Key, err error) error {
	row := l.requestRow(t, key)
	row.State, row.RC, row.OriginalID = store.Answered, string(codeOf(err)), -1
	if t.PAN != "" {
		row.MaskedPAN = pan.Mask(t.PAN)
	}
	if _, berr := l.Sales.Begin(ctx, row); berr != nil && !errors.Is(berr, store.ErrDuplicate) {
		return fmt.Errorf("journaling a refused cancel: %w", berr)
	}
	return err
}

// confirm journals and answers 00 a cancel of a sale that charged nothing
// (or whose reversal is already queued): nothing to send.
func (l Ledger) confirm(ctx context.Context, t *Txn, row store.Txn, reason string) error {
	row.State, row.RC = store.Answered, string(codes.Approved)
	stored, err := l.Sales.Begin(ctx, row)
	if errors.Is(err, store.ErrDuplicate) {
		return l.answerRepeat(ctx, t, stored)
	}
	if err != nil {
		return err
	}
	t.Code, t.Reason = codes.Approved, reason
	return nil
}

// giveBack answers a give-back of orig the switch can answer itself, or
// reserves its amount and prepares the issuer request (sending: the
// issuer leg goes on).
func (l Ledger) giveBack(ctx context.Context, t *Txn, key store.Key, orig store.Txn, isRefund bool) (sending bool, err error) {
	row := l.requestRow(t, key)
	// The card is the sale's (also for a repeat to be compared with); the
	// issuer gets it from the sale's row.
	row.MerchantID, row.ProcCode, row.Currency = orig.MerchantID, orig.ProcCode, orig.Currency
	row.MaskedPAN, row.Token, row.Route, row.RRN, row.OriginalID = orig.MaskedPAN, orig.Token, orig.Route, orig.RRN, orig.ID
	row.PANKey, row.PANKeyVersion, row.PANCiphertext = orig.PANKey, orig.PANKeyVersion, orig.PANCiphertext
	switch orig.State {
	case store.Approved:
	case store.Declined, store.Failed:
		t.Route = orig.Route
		return false, l.confirm(ctx, t, row, "original was not approved: nothing to reverse")
	case store.Forwarded:
		// Still in flight here: its outcome decides what to do. Ask the
		// terminal to repeat (nothing is journaled, so the repeat is new).
		return false, Declinef(ErrDuplicate, "original transaction %d is still in flight: repeat the cancel", orig.ID)
	case store.TimedOut:
		// Outcome unknown: the automatic reversal is already queued.
		t.Route = orig.Route
		return false, l.confirm(ctx, t, row, "original timed out: its reversal is already queued")
	default:
		return false, l.refuse(ctx, t, key, Declinef(ErrInvalidTxn, "transaction %d is not a sale", orig.ID))
	}
	amount, err := cancelAmount(t, orig.Remaining)
	if isRefund {
		amount = amountOf(t)
		if amount <= 0 {
			err = Declinef(ErrInvalidAmount, "refund amount is zero")
		}
	}
	if err == nil && amount <= 0 {
		err = Declinef(ErrInvalidAmount, "nothing remains of transaction %d to cancel", orig.ID)
	}
	if err != nil {
		return false, l.refuse(ctx, t, key, err)
	}
	row.Amount = amount
	// The cancel row and the amount it takes off the sale are one journal
	// step: of two concurrent cancels only what remains can be taken, and a
	// crash leaves both or neither.
	stored, err := l.GiveBacks.ReserveCancel(ctx, row)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return false, l.answerRepeat(ctx, t, stored)
	case errors.Is(err, store.ErrExceeds):
		return false, l.refuse(ctx, t, key, Declinef(ErrInvalidAmount, "cancel of %d is more than remains of transaction %d", amount, orig.ID))
	case err != nil:
		return false, err
	}
	t.Route = orig.Route
	return l.prepareGiveBack(ctx, t, orig, stored, isRefund)
}

// routeOf is the policy of route name (a journaled row's), or a route
// that takes reversals and has no link when it is not known.
func (l Ledger) routeOf(name string) IssuerRoute {
	if l.Routes != nil {
		if rt, ok := l.Routes.Route(name); ok {
			return rt
		}
	}
	return IssuerRoute{Name: name, GiveBack: store.KindReversal}
}

// giveBackKind is how the issuer of route rt is asked to give money back:
// a refund always by refund, anything else as the route takes it.
func giveBackKind(rt IssuerRoute, isRefund bool) string {
	if isRefund {
		return store.KindRefund
	}
	return rt.GiveBack
}

// release gives back what cancel row reserved and journals it answered
// with the code the terminal gets for cause, in one step; cause is
// returned for the terminal's answer. Should the journal fail here, the
// row stays forwarded without an issuer STAN and RecoverCancel releases it
// at the next start.
func (l Ledger) release(ctx context.Context, row store.Txn, cause error) error {
	code := codeOf(cause)
	if err := l.GiveBacks.ReleaseCancel(ctx, row.ID, store.Answered, string(code), "not given back: "+cause.Error()); err != nil {
		return errors.Join(cause, fmt.Errorf("releasing the reservation of cancel %d: %w", row.ID, err))
	}
	return cause
}

// prepareGiveBack builds the issuer request of the give-back that cancel
// row reserved. Every way it can fail before the request leaves releases
// the reservation (here, or in giveBackOutcome for the issuer leg).
func (l Ledger) prepareGiveBack(ctx context.Context, t *Txn, orig, row store.Txn, isRefund bool) (bool, error) {
	rt, ok := l.Routes.Route(orig.Route)
	if !ok {
		return false, l.release(ctx, row, fmt.Errorf("route %s of transaction %d is gone", orig.Route, orig.ID))
	}
	realPAN, err := l.Cipher.DecryptPAN(ctx, hsm.EncryptedPAN{Key: hsm.KeyRef{Label: orig.PANKey, Version: orig.PANKeyVersion}, Ciphertext: orig.PANCiphertext})
	if err != nil {
		return false, l.release(ctx, row, fmt.Errorf("decrypting the original's PAN: %w", err))
	}
	kind := giveBackKind(rt, isRefund)
	req, err := ReversalMessage(rt.Link, orig, realPAN, kind, specs.MTIReversal, row.Amount, time.Now())
	if err != nil {
		return false, l.release(ctx, row, err)
	}
	t.Issuer, t.IssuerRequest = rt, req
	t.leg.row, t.leg.orig, t.leg.kind, t.leg.amount = row, orig, kind, row.Amount
	return true, nil
}

// RecordGiveBack journals the give-back's issuer-leg DE 11 / DE 7 before
// it leaves: if this switch dies now, the recovery repeats exactly this
// give-back (the issuer recognises the repeat) instead of sending a second.
func RecordGiveBack(l Ledger) Stage {
	return recordRequest("record-giveback", func(ctx context.Context, t *Txn) error {
		stan, _ := t.IssuerRequest.GetString(specs.STAN)
		tt, _ := t.IssuerRequest.GetString(specs.TransmissionDateTime)
		if err := l.Sales.Set(ctx, t.leg.row.ID, store.Update{State: store.Forwarded, IssuerSTAN: stan, IssuerTxT: tt}, ""); err != nil {
			return err
		}
		t.leg.row.IssuerSTAN, t.leg.row.IssuerTxTime = stan, tt
		return nil
	})
}

// giveBackOutcome journals how the issuer leg of a give-back ended (err:
// what it returned). Before the request was journaled nothing left: the
// reservation is released. An unanswered give-back goes on through the
// SAF, repeating this very message's DE 11 / DE 7.
func (l Ledger) giveBackOutcome(ctx context.Context, t *Txn, err error) error {
	row := t.leg.row
	switch {
	case !t.RequestRecorded:
		return l.release(ctx, row, err)
	case err == nil:
		rc, _ := t.IssuerResponse.GetString(specs.ResponseCode)
		t.Code = codes.Code(rc)
		if !t.Code.IsApproved() {
			return l.GiveBacks.ReleaseCancel(ctx, row.ID, store.Answered, rc, "issuer answered "+rc)
		}
		auth, _ := t.IssuerResponse.GetString(specs.ApprovalCode)
		return l.Sales.Set(ctx, row.ID, store.Update{State: store.Answered, RC: rc, ApprovalCode: auth}, "issuer answered "+rc)
	case NoAnswer(err) || Unavailable(err):
		// The cancel stands: it goes on through the SAF until acknowledged.
		row.Route = t.leg.orig.Route
		if qerr := l.QueueRepeat(ctx, row, t.leg.kind, t.leg.amount); qerr != nil {
			return qerr
		}
		t.Code, t.Reason = codes.Approved, "issuer did not answer: cancel queued for store-and-forward"
		return l.Sales.Set(ctx, row.ID, store.Update{State: store.Answered, RC: string(codes.Approved)}, t.Reason)
	default:
		return l.release(ctx, row, err)
	}
}

// RecoverCancel settles cancel or refund c found Forwarded after a
// restart (the previous run died with its reservation held). Without an
// issuer STAN it never left the switch: its amount goes back to the sale
// and it is failed (a repeat from the terminal gets 96), nothing is sent.
// With one it may have reached the issuer: its repeat, with the same DE 11
// and DE 7, is queued in the SAF and the cancel stands (answered 00).
// queued reports which.
func (l Ledger) RecoverCancel(ctx context.Context, c store.Txn) (queued bool, err error) {
	if c.IssuerSTAN == "" {
		err := l.GiveBacks.ReleaseCancel(ctx, c.ID, store.Failed, string(codes.SystemError),
			"found in flight after a restart, never sent: amount given back to the sale")
		if errors.Is(err, store.ErrNotReserved) {
			return false, nil // settled meanwhile
		}
		return false, err
	}
	// Queue first: a crash between the two steps queues the repeat twice
	// (the issuer recognises it), never not at all.
	if err := l.QueueRepeat(ctx, c, giveBackKind(l.routeOf(c.Route), c.MTI == specs.MTIFinancialRequest), c.Amount); err != nil {
		return false, err
	}
	return true, l.Sales.Set(ctx, c.ID, store.Update{State: store.Answered, RC: string(codes.Approved)},
		"found in flight after a restart: repeat queued")
}

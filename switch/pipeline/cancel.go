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
		return 0, Declinef(codes.FormatError, "DE 95 does not start with a 12-digit amount")
	}
	actual, _ := strconv.ParseInt(de95[:12], 10, 64)
	if actual >= remaining {
		return 0, Declinef(codes.InvalidAmount, "DE 95 leaves %d of %d remaining: nothing to cancel", actual, remaining)
	}
	return remaining - actual, nil
}

// Cancel handles what gives money back: a merchant cancel or a lost-response
// reversal (0400 naming the sale in DE 90, partial with DE 95) and a refund
// (0200 with processing code 20 naming the sale by RRN and approval code).
// The original is found in the journal only within the request's listener,
// terminal, merchant and MAC key, in its currency (and, for a refund, to
// its card); anything else is 25, exactly as for a sale that does not
// exist. More than remains is 13; an exact repeat gets the stored answer,
// a same-key request with other content 94; the issuer gets the original
// PAN from the journal, also when the sale was paid with a one-time token
// that is consumed; a sale that was declined or never reached the issuer
// is answered 00 without bothering the issuer.
func Cancel(l Ledger, links func(route string) (Upstream, bool)) Stage {
	return Stage{Name: "cancel", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			proc, _ := t.Request.GetString(specs.ProcessingCode)
			isRefund := t.MTI == specs.MTIFinancialRequest && strings.HasPrefix(proc, "20")
			if t.MTI != specs.MTIReversal && !isRefund {
				return next.Handle(ctx, t)
			}
			key := KeyOf(t)
			if stored, err := l.Sales.FindByKey(ctx, key); err == nil {
				return l.answerRepeat(ctx, t, stored)
			}
			var orig store.Txn
			var err error
			if isRefund {
				orig, err = l.findRefunded(ctx, t)
			} else {
				orig, err = l.findCancelled(ctx, t)
			}
			if err != nil {
				return l.refuse(ctx, t, key, err)
			}
			return l.giveBack(ctx, t, key, orig, isRefund, links)
		})
	}}
}

// notFound is the answer for every original outside the request's reach:
// the terminal cannot tell "not there" from "not yours".
func notFound(format string, a ...any) error {
	return Declinef(codes.OriginalNotFound, "no matching original: "+format, a...)
}

// findCancelled finds the sale (or authorisation) a 0400 names in DE 90,
// within the cancel's scope and, when the cancel carries DE 49, currency.
func (l Ledger) findCancelled(ctx context.Context, t *Txn) (store.Txn, error) {
	de90, _ := t.Request.GetString(specs.OriginalData)
	ref, ok := parseDE90(de90)
	if !ok {
		return store.Txn{}, Declinef(codes.FormatError, "DE 90 is not 42 digits")
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
		return store.Txn{}, Declinef(codes.FormatError, "refund without the original's RRN (DE 37) and approval code (DE 38)")
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
		return store.Txn{}, Declinef(codes.InvalidTxn, "transaction %d is an authorisation hold, never captured: cancel it (0400) instead of refunding", orig.ID)
	}
	return orig, nil
}

// refuse journals a cancel the switch answers itself without a change.
func (l Ledger) refuse(ctx context.Context, t *Txn, key store.Key, err error) error {
	row := l.requestRow(t, key)
	row.State, row.RC, row.OriginalID = store.Answered, string(l.Classify(err)), -1
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

func (l Ledger) giveBack(ctx context.Context, t *Txn, key store.Key, orig store.Txn, isRefund bool, links func(string) (Upstream, bool)) error {
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
		return l.confirm(ctx, t, row, "original was not approved: nothing to reverse")
	case store.Forwarded:
		// Still in flight here: its outcome decides what to do. Ask the
		// terminal to repeat (nothing is journaled, so the repeat is new).
		return Declinef(codes.Duplicate, "original transaction %d is still in flight: repeat the cancel", orig.ID)
	case store.TimedOut:
		// Outcome unknown: the automatic reversal is already queued.
		t.Route = orig.Route
		return l.confirm(ctx, t, row, "original timed out: its reversal is already queued")
	default:
		return l.refuse(ctx, t, key, Declinef(codes.InvalidTxn, "transaction %d is not a sale", orig.ID))
	}
	amount, err := cancelAmount(t, orig.Remaining)
	if isRefund {
		amount = amountOf(t)
		if amount <= 0 {
			err = Declinef(codes.InvalidAmount, "refund amount is zero")
		}
	}
	if err == nil && amount <= 0 {
		err = Declinef(codes.InvalidAmount, "nothing remains of transaction %d to cancel", orig.ID)
	}
	if err != nil {
		return l.refuse(ctx, t, key, err)
	}
	row.Amount = amount
	// The cancel row and the amount it takes off the sale are one journal
	// step: of two concurrent cancels only what remains can be taken, and a
	// crash leaves both or neither.
	stored, err := l.GiveBacks.ReserveCancel(ctx, row)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return l.answerRepeat(ctx, t, stored)
	case errors.Is(err, store.ErrExceeds):
		return l.refuse(ctx, t, key, Declinef(codes.InvalidAmount, "cancel of %d is more than remains of transaction %d", amount, orig.ID))
	case err != nil:
		return err
	}
	t.Route = orig.Route
	return l.sendGiveBack(ctx, t, orig, stored, isRefund, links)
}

// giveBackKind is how the issuer of route is asked to give money back.
func (l Ledger) giveBackKind(route string, isRefund bool) string {
	if isRefund {
		return store.KindRefund
	}
	return l.SAFKind(route)
}

// release gives back what cancel row reserved and journals it answered
// with the code the terminal gets for cause, in one step; cause is
// returned for the terminal's answer. Should the journal fail here, the
// row stays forwarded without an issuer STAN and RecoverCancel releases it
// at the next start.
func (l Ledger) release(ctx context.Context, row store.Txn, cause error) error {
	code := l.Classify(cause)
	if err := l.GiveBacks.ReleaseCancel(ctx, row.ID, store.Answered, string(code), "not given back: "+cause.Error()); err != nil {
		return errors.Join(cause, fmt.Errorf("releasing the reservation of cancel %d: %w", row.ID, err))
	}
	return cause
}

// sendGiveBack sends the give-back that cancel row reserved. Every way it
// can fail before the request leaves releases the reservation; once the
// issuer STAN is journaled the request may have left, and an unanswered
// give-back goes on through the SAF.
func (l Ledger) sendGiveBack(ctx context.Context, t *Txn, orig, row store.Txn, isRefund bool, links func(string) (Upstream, bool)) error {
	amount := row.Amount
	up, ok := links(orig.Route)
	if !ok {
		return l.release(ctx, row, fmt.Errorf("route %s of transaction %d is gone", orig.Route, orig.ID))
	}
	realPAN, err := l.Cipher.DecryptPAN(ctx, hsm.EncryptedPAN{Key: hsm.KeyRef{Label: orig.PANKey, Version: orig.PANKeyVersion}, Ciphertext: orig.PANCiphertext})
	if err != nil {
		return l.release(ctx, row, fmt.Errorf("decrypting the original's PAN: %w", err))
	}
	kind := l.giveBackKind(orig.Route, isRefund)
	req, err := ReversalMessage(up, orig, realPAN, kind, specs.MTIReversal, amount, time.Now())
	if err != nil {
		return l.release(ctx, row, err)
	}
	if err := up.Assign(req); err != nil {
		return l.release(ctx, row, fmt.Errorf("assigning the issuer STAN: %w", err))
	}
	// Journal the issuer-leg DE 11 / DE 7 before it leaves: if this switch
	// dies now, the recovery repeats exactly this reversal (the issuer
	// recognises the repeat) instead of sending a second one.
	stan, _ := req.GetString(specs.STAN)
	tt, _ := req.GetString(specs.TransmissionDateTime)
	if err := l.Sales.Set(ctx, row.ID, store.Update{State: store.Forwarded, IssuerSTAN: stan, IssuerTxT: tt}, ""); err != nil {
		up.Abandon(req)
		return l.release(ctx, row, err)
	}
	t.IssuerRequest = req
	sent := time.Now()
	resp, err := up.Exchange(ctx, req)
	t.IssuerTime = time.Since(sent)
	switch {
	case err == nil:
		t.IssuerResponse = resp
		rc, _ := resp.GetString(specs.ResponseCode)
		t.Code = codes.Code(rc)
		if !t.Code.IsApproved() {
			return l.GiveBacks.ReleaseCancel(ctx, row.ID, store.Answered, rc, "issuer answered "+rc)
		}
		auth, _ := resp.GetString(specs.ApprovalCode)
		return l.Sales.Set(ctx, row.ID, store.Update{State: store.Answered, RC: rc, ApprovalCode: auth}, "issuer answered "+rc)
	case l.NoAnswer(err) || l.Unavailable(err):
		// The cancel stands: it goes on through the SAF until acknowledged,
		// repeating this very message's DE 11 / DE 7.
		row.Route, row.IssuerSTAN, row.IssuerTxTime = orig.Route, stan, tt
		if qerr := l.QueueRepeat(ctx, row, kind, amount); qerr != nil {
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
	if err := l.QueueRepeat(ctx, c, l.giveBackKind(c.Route, c.MTI == specs.MTIFinancialRequest), c.Amount); err != nil {
		return false, err
	}
	return true, l.Sales.Set(ctx, c.ID, store.Update{State: store.Answered, RC: string(codes.Approved)},
		"found in flight after a restart: repeat queued")
}

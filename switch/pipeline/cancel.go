package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/journal"
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
// The original is found in the journal (25 when not), never for another
// terminal; more than remains is 13; an exact repeat gets the stored answer;
// the issuer gets the original PAN from the journal, also when the sale was
// paid with a one-time token that is consumed; a sale that was declined or
// never reached the issuer is answered 00 without bothering the issuer.
func Cancel(l Ledger, links func(route string) (Upstream, bool)) Stage {
	return Stage{Name: "cancel", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			proc, _ := t.Request.GetString(specs.ProcessingCode)
			isRefund := t.MTI == specs.MTIFinancialRequest && strings.HasPrefix(proc, "20")
			if t.MTI != specs.MTIReversal && !isRefund {
				return next.Handle(ctx, t)
			}
			key := KeyOf(t)
			if stored, err := l.Journal.FindByKey(ctx, key); err == nil {
				return answerStored(t, stored)
			}
			orig, err := l.findOriginal(ctx, t, isRefund)
			if err != nil {
				return l.refuse(ctx, t, key, err)
			}
			return l.giveBack(ctx, t, key, orig, isRefund, links)
		})
	}}
}

func (l Ledger) findOriginal(ctx context.Context, t *Txn, isRefund bool) (journal.Txn, error) {
	if isRefund {
		rrn, _ := t.Request.GetString(specs.RRN)
		auth, _ := t.Request.GetString(specs.ApprovalCode)
		if rrn == "" || auth == "" {
			return journal.Txn{}, Declinef(codes.FormatError, "refund without the original's RRN (DE 37) and approval code (DE 38)")
		}
		orig, err := l.Journal.FindByRRN(ctx, rrn)
		tid, _ := t.Request.GetString(specs.TerminalID)
		if err != nil || orig.ApprovalCode != auth || orig.TerminalID != tid {
			return journal.Txn{}, Declinef(codes.OriginalNotFound, "no approved sale with that RRN and approval code for this terminal")
		}
		return orig, nil
	}
	de90, _ := t.Request.GetString(specs.OriginalData)
	ref, ok := parseDE90(de90)
	if !ok {
		return journal.Txn{}, Declinef(codes.FormatError, "DE 90 is not 42 digits")
	}
	tid, _ := t.Request.GetString(specs.TerminalID)
	orig, err := l.Journal.FindOriginal(ctx, tid, ref.MTI, ref.STAN, ref.TxTime)
	if errors.Is(err, journal.ErrNotFound) || (err == nil && orig.OriginalID != 0) {
		return journal.Txn{}, Declinef(codes.OriginalNotFound, "no sale %s STAN %s at %s for this terminal", ref.MTI, ref.STAN, ref.TxTime)
	}
	return orig, err
}

// refuse journals a cancel the switch answers itself without a change.
func (l Ledger) refuse(ctx context.Context, t *Txn, key journal.Key, err error) error {
	code := l.Classify(err)
	row := journal.Txn{Key: key, Listener: t.Listener, Amount: amountOf(t), State: journal.Answered, RC: string(code)}
	row.MerchantID, _ = t.Request.GetString(specs.MerchantID)
	row.ProcCode, _ = t.Request.GetString(specs.ProcessingCode)
	row.OriginalID = -1
	if _, berr := l.Journal.Begin(ctx, row); berr != nil && !errors.Is(berr, journal.ErrDuplicate) {
		return fmt.Errorf("journaling a refused cancel: %w", berr)
	}
	return err
}

func (l Ledger) giveBack(ctx context.Context, t *Txn, key journal.Key, orig journal.Txn, isRefund bool, links func(string) (Upstream, bool)) error {
	row := journal.Txn{Key: key, Listener: t.Listener, MerchantID: orig.MerchantID, ProcCode: orig.ProcCode,
		Currency: orig.Currency, MaskedPAN: orig.MaskedPAN, Token: orig.Token, Route: orig.Route,
		OriginalID: orig.ID, State: journal.Forwarded, RRN: orig.RRN}
	switch orig.State {
	case journal.Approved:
	case journal.Declined, journal.Failed:
		// Nothing was charged: confirm without bothering the issuer.
		row.State, row.RC = journal.Answered, string(codes.Approved)
		t.Code, t.Reason, t.Route = codes.Approved, "original was not approved: nothing to reverse", orig.Route
		_, err := l.Journal.Begin(ctx, row)
		return err
	case journal.Forwarded:
		// Still in flight here: its outcome decides what to do. Ask the
		// terminal to repeat (nothing is journaled, so the repeat is new).
		return Declinef(codes.Duplicate, "original transaction %d is still in flight: repeat the cancel", orig.ID)
	case journal.TimedOut:
		// Outcome unknown: the automatic reversal is already queued.
		row.State, row.RC = journal.Answered, string(codes.Approved)
		t.Code, t.Reason, t.Route = codes.Approved, "original timed out: its reversal is already queued", orig.Route
		_, err := l.Journal.Begin(ctx, row)
		return err
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
	stored, err := l.Journal.Begin(ctx, row)
	if errors.Is(err, journal.ErrDuplicate) {
		return answerStored(t, stored)
	}
	if err != nil {
		return err
	}
	row = stored
	// Take the amount off first, so two concurrent cancels cannot both
	// succeed for more than remains.
	if _, err := l.Journal.Cancel(ctx, orig.ID, row.ID, amount, "", ""); err != nil {
		if errors.Is(err, journal.ErrExceeds) {
			_ = l.Journal.Set(ctx, row.ID, journal.Update{State: journal.Answered, RC: string(codes.InvalidAmount)}, "more than remains")
			return Declinef(codes.InvalidAmount, "cancel of %d is more than remains of transaction %d", amount, orig.ID)
		}
		return err
	}
	t.Route = orig.Route
	return l.sendGiveBack(ctx, t, orig, row, amount, isRefund, links)
}

func (l Ledger) sendGiveBack(ctx context.Context, t *Txn, orig, row journal.Txn, amount int64, isRefund bool, links func(string) (Upstream, bool)) error {
	up, ok := links(orig.Route)
	if !ok {
		return fmt.Errorf("route %s of transaction %d is gone", orig.Route, orig.ID)
	}
	realPAN, err := l.Cipher.DecryptPAN(ctx, hsm.EncryptedPAN{Key: hsm.KeyRef{Label: orig.PANKey, Version: orig.PANKeyVersion}, Ciphertext: orig.PANCiphertext})
	if err != nil {
		return fmt.Errorf("decrypting the original's PAN: %w", err)
	}
	kind := l.SAFKind(orig.Route)
	if isRefund {
		kind = journal.KindRefund
	}
	req, err := ReversalMessage(up, orig, realPAN, kind, specs.MTIReversal, amount, time.Now())
	if err != nil {
		return err
	}
	if err := up.Assign(req); err != nil {
		return err
	}
	// Journal the issuer-leg DE 11 / DE 7 before it leaves: if this switch
	// dies now, the recovery repeats exactly this reversal (the issuer
	// recognises the repeat) instead of sending a second one.
	stan, _ := req.GetString(specs.STAN)
	tt, _ := req.GetString(specs.TransmissionDateTime)
	if err := l.Journal.Set(ctx, row.ID, journal.Update{State: journal.Forwarded, IssuerSTAN: stan, IssuerTxT: tt}, ""); err != nil {
		up.Abandon(req)
		_ = l.Journal.Restore(ctx, orig.ID, amount, "cancel not journaled: "+err.Error())
		return err
	}
	t.IssuerRequest = req
	resp, err := up.Exchange(ctx, req)
	switch {
	case err == nil:
		t.IssuerResponse = resp
		rc, _ := resp.GetString(specs.ResponseCode)
		t.Code = codes.Code(rc)
		if !t.Code.IsApproved() {
			_ = l.Journal.Restore(ctx, orig.ID, amount, fmt.Sprintf("issuer answered %s to the cancel", rc))
		}
		auth, _ := resp.GetString(specs.ApprovalCode)
		return l.Journal.Set(ctx, row.ID, journal.Update{State: journal.Answered, RC: rc, ApprovalCode: auth}, "issuer answered "+rc)
	case l.NoAnswer(err) || l.Unavailable(err):
		// The cancel stands: it goes on through the SAF until acknowledged,
		// repeating this very message's DE 11 / DE 7.
		row.Route, row.IssuerSTAN, row.IssuerTxTime = orig.Route, stan, tt
		if qerr := l.QueueRepeat(ctx, row, kind, amount); qerr != nil {
			return qerr
		}
		t.Code, t.Reason = codes.Approved, "issuer did not answer: cancel queued for store-and-forward"
		return l.Journal.Set(ctx, row.ID, journal.Update{State: journal.Answered, RC: string(codes.Approved)}, t.Reason)
	default:
		_ = l.Journal.Restore(ctx, orig.ID, amount, "cancel failed: "+err.Error())
		return err
	}
}

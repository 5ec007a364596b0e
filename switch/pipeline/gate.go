package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
)

// JournalGuard keeps sales away from a journal that cannot record them.
// The switch implements it (probe, readiness, metrics); JournalSale consults it
// when Ledger.Guard is set.
//
// The contract: a request is only sent to the issuer while Admit is nil; a
// journal write failure is reported (Failed, or Hold for an outcome of a
// request that left), which closes the gate until the guard has seen the
// journal take writes again and has settled every held outcome with
// Ledger.SettleHeld.
type JournalGuard interface {
	// Admit is nil while the journal accepts writes; otherwise it says why
	// not (a log reason: never card data).
	Admit() error
	// Track marks journal row id as worked on by this process until done
	// is called: a sweep of rows left in flight must leave it alone.
	Track(id int64) (done func())
	// Failed reports a journal write that failed with nothing to hold.
	Failed(err error)
	// Hold takes an outcome the journal refused (err) and keeps it in
	// memory until the journal accepts writes again.
	Hold(h *Held, err error)
}

// Held is the outcome of a request that left for the issuer which the
// journal could not record. Its row stays "forwarded" in the journal until
// the guard settles it.
type Held struct {
	// Row is the request as journaled when it left.
	Row store.Txn
	// Reverse: the issuer approved, or may have (no answer). The terminal
	// got 91; the row becomes timed out and a reversal is queued.
	Reverse bool
	// Update is what to record otherwise (a decline or a failure, which the
	// terminal got as it was).
	Update store.Update
	// Event says what happened, for the transaction's history.
	Event string
	// ReversalQueued is set once the reversal is durably queued, so a
	// settle that fails half-way never queues it twice.
	ReversalQueued bool
}

// SettleHeld journals a held outcome: for a sale to reverse, its reversal
// is queued first (a crash before the row is updated leaves it forwarded,
// which recovery reverses again rather than never), then the row becomes
// timed out (91, the code the terminal got). Safe to call again after an
// error.
func (l Ledger) SettleHeld(ctx context.Context, h *Held) error {
	if !h.Reverse {
		return l.Sales.Set(ctx, h.Row.ID, h.Update, h.Event)
	}
	if !h.ReversalQueued {
		if err := l.QueueReversal(ctx, h.Row, h.Row.Amount); err != nil {
			return fmt.Errorf("queueing the reversal of held transaction %d: %w", h.Row.ID, err)
		}
		h.ReversalQueued = true
	}
	return l.Sales.Set(ctx, h.Row.ID, store.Update{State: store.TimedOut, RC: string(codes.IssuerUnavailable)}, h.Event)
}

// admit refuses a new request with 91 while the journal takes no writes.
func (l Ledger) admit() error {
	if l.Guard == nil {
		return nil
	}
	if err := l.Guard.Admit(); err != nil {
		return Declinef(ErrNotSent, "not sent: %v", err)
	}
	return nil
}

// track marks a journaled request as worked on until the returned func runs.
func (l Ledger) track(id int64) func() {
	if l.Guard == nil {
		return func() {}
	}
	return l.Guard.Track(id)
}

// journalFailed reports a failed journal write with nothing to hold.
func (l Ledger) journalFailed(err error) {
	if l.Guard != nil {
		l.Guard.Failed(err)
	}
}

// notSent answers 91 a request that was not sent because the journal
// could not record it (and reports the failure).
func (l Ledger) notSent(err error) error {
	l.journalFailed(err)
	return Declinef(ErrNotSent, "not sent: journaling the request failed: %v", err)
}

// unsettled is an outcome the journal refused part-way through settling:
// hold keeps the Held as it stands (its reversal possibly queued).
type unsettled struct {
	held *Held
	err  error
}

func (u *unsettled) Error() string { return u.err.Error() }
func (u *unsettled) Unwrap() error { return u.err }

// hold keeps the outcome of a request that left, which the journal refused
// (werr), and decides what the terminal hears: never an approval. A sale
// the issuer approved or did not answer is answered 91 and reversed once
// the journal takes writes; a decline or failure is answered as it was.
// Without a guard the outcome cannot be held: 96, as before.
func (l Ledger) hold(t *Txn, row store.Txn, err, werr error) error {
	if l.Guard == nil {
		return fmt.Errorf("journaling the outcome: %w", werr)
	}
	h := &Held{Row: row}
	var us *unsettled
	switch {
	case errors.As(werr, &us):
		h = us.held
	case err == nil && t.Code.IsApproved():
		h.Reverse, h.Event = true, "issuer approved but the outcome could not be journaled: terminal told 91, reversal queued"
	case err == nil:
		h.Update, h.Event = store.Update{State: store.Declined, RC: string(t.Code)}, "issuer answered "+string(t.Code)+" (journaled late)"
	case NoAnswer(err):
		h.Reverse, h.Event = true, "no answer from the issuer and the journal failed: terminal told 91, reversal queued"
	default:
		code := codeOf(err)
		h.Update, h.Event = store.Update{State: store.Failed, RC: string(code)}, "failed: "+string(code)+" (journaled late)"
	}
	l.Guard.Hold(h, werr)
	if !h.Reverse {
		return err
	}
	// The terminal must not see the issuer's approval code with its 91.
	t.IssuerResponse = nil
	return Declinef(ErrNotSent, "outcome not journaled (%v): held, reversal to follow", werr)
}

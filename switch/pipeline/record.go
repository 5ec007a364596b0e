package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
)

// PANCipher encrypts PANs for the journal and decrypts them for reversals.
type PANCipher interface {
	EncryptPAN(ctx context.Context, key hsm.KeyRef, pan string) (hsm.EncryptedPAN, error)
	DecryptPAN(ctx context.Context, enc hsm.EncryptedPAN) (string, error)
}

// Ledger is what the journal stages need: the store's parts they use
// (LedgerOn fills them from one store.Store) and the policy around them.
type Ledger struct {
	Sales     store.Sales
	GiveBacks store.GiveBacks
	Queue     store.Queue
	Lookup    store.Lookup
	Cipher    PANCipher
	DataKey   string
	// ReversalExpiry bounds how long the SAF keeps trying a reversal before
	// it is flagged for manual review.
	ReversalExpiry time.Duration
	// Routes resolves a journaled row's route by name (its give-back kind,
	// and its link to keep a queued repeat's STAN owned); nil: every route
	// takes reversals and nobody allocates STANs (tests without links).
	Routes Routes
	// Guard, when set, refuses new sales while the journal fails and holds
	// outcomes it could not record (see JournalGuard). Nil: none.
	Guard JournalGuard
	// HoldQueued, when set, keeps a queued repeat's STAN owned in place of
	// its route's link (the SAF worker, which lets it go once the item is
	// settled by whichever instance).
	HoldQueued func(it store.SAFItem)
}

// LedgerOn returns a Ledger over the parts of st; the caller sets the
// policy fields.
func LedgerOn(st store.Store) Ledger {
	return Ledger{Sales: st.Sales(), GiveBacks: st.GiveBacks(), Queue: st.Queue(), Lookup: st.Lookup()}
}

// KeyOf is the duplicate key of a request: terminal ID, STAN, DE 7, MTI.
func KeyOf(t *Txn) store.Key {
	tid, _ := t.Request.GetString(specs.TerminalID)
	stan, _ := t.Request.GetString(specs.STAN)
	tt, _ := t.Request.GetString(specs.TransmissionDateTime)
	return store.Key{TerminalID: tid, STAN: stan, TxTime: tt, MTI: t.MTI}
}

func amountOf(t *Txn) int64 {
	s, _ := t.Request.GetString(specs.Amount)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// answerStored answers a repeat from its journal row (answerRepeat checked
// that it is the same request): the stored code, approval code and RRN, or
// 94 while the original is still in flight.
func answerStored(t *Txn, stored store.Txn) error {
	if stored.State == store.Forwarded || stored.RC == "" {
		return Declinef(ErrDuplicate, "duplicate of transaction %d still in flight", stored.ID)
	}
	t.Code, t.Reason = codes.Code(stored.RC), fmt.Sprintf("duplicate of transaction %d: stored answer", stored.ID)
	t.ApprovalCode, t.RRN = stored.ApprovalCode, stored.RRN
	t.Route = stored.Route
	return nil
}

// legState is the journal's state of one transaction, shared by its
// list's record stages.
type legState struct {
	// row is the journal row: as received, then as journaled.
	row store.Txn
	// beginErr is the journal's refusal of the request row (not sent).
	beginErr error
	untrack  func()
	// repeatOf is the stored row of the same key, when Begin found one
	// (the request is a repeat, answered from it).
	repeatOf *store.Txn
	// A give-back's original, its kind and amount (GiveBack).
	orig   store.Txn
	kind   string
	amount int64
}

// JournalSale journals purchases and authorisations around the issuer leg
// (the outcome stage of the sale list): a repeat of a journaled request
// gets the stored answer (or 94) and never reaches the issuer; the outcome
// is journaled durably before the terminal hears it; a sale the issuer did
// not answer is answered 91 and its reversal queued. While the journal
// takes no writes (Ledger.Guard) a new request is answered 91 without
// reaching the issuer; an outcome the journal refuses is never an
// approval: it is held and settled (reversed) once the journal recovers.
// RecordSale, further down the list, journals the request before it leaves.
//
// A repeat is found by the journal's unique key when the request row is
// recorded (Sales.Begin answers store.ErrDuplicate with the stored row),
// not by a look-up first: the stages in between have no side effect a
// repeat must not repeat, except those lookFirst (nil: none) names for a
// request (a token's use), which is looked up before they run; so is every
// request while the journal takes no writes (a repeat is still answered
// from it).
func JournalSale(l Ledger, lookFirst func(context.Context, *Txn) bool) Stage {
	return Stage{Name: "journal", Role: RoleRecordOutcome, Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			// The stage's work is in two functions of their own so that
			// this frame, under every later stage of the list, stays small
			// (a journal row is half a kilobyte; a goroutine's stack that
			// outgrows its start is copied).
			if answered, err := l.receiveSale(ctx, t, lookFirst); answered {
				return err
			}
			return l.settleSale(ctx, t, next.Handle(ctx, t))
		})
	}}
}

// receiveSale answers t (answered) when it is a repeat looked up first or
// the journal takes no writes; otherwise it sets t's request row.
func (l Ledger) receiveSale(ctx context.Context, t *Txn, lookFirst func(context.Context, *Txn) bool) (answered bool, err error) {
	key := KeyOf(t)
	admitErr := l.admit()
	if admitErr != nil || lookFirst != nil && lookFirst(ctx, t) {
		if stored, err := l.Sales.FindByKey(ctx, key); err == nil {
			return true, l.answerRepeat(ctx, t, stored)
		}
	}
	if admitErr != nil {
		return true, admitErr
	}
	t.leg.row = l.requestRow(t, key)
	return false, nil
}

// settleSale journals the outcome err of t's issuer leg (or answers t
// from the row of the request it repeats) and returns what the terminal
// is answered by.
func (l Ledger) settleSale(ctx context.Context, t *Txn, err error) error {
	if t.leg.untrack != nil {
		defer t.leg.untrack()
	}
	if t.leg.repeatOf != nil {
		return l.answerRepeat(ctx, t, *forgetLeg(t))
	}
	if t.leg.beginErr != nil {
		// Not journaled, so not sent: nothing to record either.
		return l.notSent(t.leg.beginErr)
	}
	row := &t.leg.row
	if werr := l.outcome(ctx, t, row, err); werr != nil {
		if row.ID == 0 {
			// Never left: nothing to hold, but the journal fails.
			l.journalFailed(werr)
			return fmt.Errorf("journaling the outcome: %w", werr)
		}
		// Not durable: the terminal must not hear an approval.
		return l.hold(t, *row, err, werr)
	}
	if t.leg.repeatOf != nil {
		return l.answerRepeat(ctx, t, *forgetLeg(t))
	}
	return err
}

// forgetLeg drops what the stages after JournalSale prepared for the
// issuer leg of a request found to be a repeat (it never left: the
// terminal hears the stored answer, its RRN included) and returns the
// stored row.
func forgetLeg(t *Txn) *store.Txn {
	t.Route, t.Issuer, t.IssuerRequest, t.IssuerPINBlock = "", IssuerRoute{}, nil, nil
	return t.leg.repeatOf
}

// RecordSale journals a sale's issuer request durably (state forwarded,
// with its issuer STAN, RRN and the PAN encrypted) before it leaves.
func RecordSale(l Ledger) Stage {
	return recordRequest("record", l.recordSale)
}

// recordSale journals t's issuer request: its request row, completed in
// place (a copy of a row is half a kilobyte of this deep frame).
func (l Ledger) recordSale(ctx context.Context, t *Txn) error {
	enc, err := l.sealPAN(ctx, t)
	if err != nil {
		return fmt.Errorf("encrypting PAN for the journal: %w", err)
	}
	row := &t.leg.row
	row.State, row.Route = store.Forwarded, t.Route
	row.IssuerSTAN, _ = t.IssuerRequest.GetString(specs.STAN)
	row.IssuerTxTime, _ = t.IssuerRequest.GetString(specs.TransmissionDateTime)
	row.RRN, _ = t.IssuerRequest.GetString(specs.RRN)
	row.MaskedPAN, row.Token, row.CardExpiry = pan.Mask(t.PAN), t.Token, t.CardExpiry
	if row.CardExpiry == "" {
		row.CardExpiry, _ = t.Request.GetString(specs.Expiry)
	}
	row.PANKey, row.PANKeyVersion, row.PANCiphertext = enc.Key.Label, enc.Key.Version, enc.Ciphertext
	stored, err := l.Sales.Begin(ctx, *row)
	if errors.Is(err, store.ErrDuplicate) {
		// A repeat: JournalSale answers it from the stored row.
		dup := stored
		t.leg.repeatOf = &dup
		return Declinef(ErrDuplicate, "duplicate of transaction %d", dup.ID)
	}
	if err != nil {
		t.leg.beginErr = err
		return err
	}
	*row = stored
	t.leg.untrack = l.track(stored.ID)
	return nil
}

func (l Ledger) outcome(ctx context.Context, t *Txn, row *store.Txn, err error) error {
	if row.ID == 0 {
		// Never left the switch: record the refusal (once; a repeat finds it).
		if errors.Is(err, ErrDuplicate) {
			return nil
		}
		code := t.Code
		if err != nil {
			code = codeOf(err)
		}
		// The card as presented, for comparing a repeat with: the token
		// when there is one (t.PAN is then the card behind it).
		row.State, row.RC, row.MaskedPAN, row.Token = store.Failed, string(code), pan.Mask(t.PAN), t.Token
		stored, berr := l.Sales.Begin(ctx, *row)
		if errors.Is(berr, store.ErrDuplicate) {
			// A repeat refused before it was recorded: JournalSale answers
			// it from the stored row, as if it had looked it up first.
			dup := stored
			t.leg.repeatOf = &dup
			return nil
		}
		return berr
	}
	switch {
	case err == nil:
		u := store.Update{State: store.Declined, RC: string(t.Code)}
		if t.Code.IsApproved() {
			u.State = store.Approved
			u.ApprovalCode, _ = t.IssuerResponse.GetString(specs.ApprovalCode)
			rem := row.Amount
			u.Remaining = &rem
		}
		return l.Sales.Set(ctx, row.ID, u, "issuer answered "+string(t.Code))
	case NoAnswer(err):
		// The reversal is queued before the row leaves "forwarded": a
		// crash in between leaves a row that recovery reverses (again, at
		// worst), never a timed-out sale nobody reverses.
		h := &Held{Row: *row, Reverse: true, Event: "no answer from the issuer: terminal told 91, reversal queued"}
		if serr := l.SettleHeld(ctx, h); serr != nil {
			return &unsettled{held: h, err: serr}
		}
		return nil
	default:
		code := codeOf(err)
		return l.Sales.Set(ctx, row.ID, store.Update{State: store.Failed, RC: string(code)}, "failed: "+string(code))
	}
}

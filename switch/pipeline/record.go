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
	// Classify maps a stage error to DE 39 as Process will (the journal
	// must record the code the terminal gets).
	Classify func(error) codes.Code
	// NoAnswer reports an error after which the issuer may have approved
	// (the request left, no answer came): such a sale is reversed.
	NoAnswer func(error) bool
	// Unavailable reports an error after which the request never left
	// (no signed-on link): a merchant cancel then waits in the SAF.
	Unavailable func(error) bool
	// ReversalExpiry bounds how long the SAF keeps trying a reversal before
	// it is flagged for manual review.
	ReversalExpiry time.Duration
	// SAFKind is how a route gives money back: store.KindReversal or
	// store.KindRefund.
	SAFKind func(route string) string
	// HoldSTAN keeps a route's STAN owned for a queued repeat (nil: no
	// one allocates STANs, as in tests without links).
	HoldSTAN func(route, stan string)
	// AuthKey names the MAC key a listener's terminals sign with ("" for
	// a plain listener; nil: none is keyed). A keyed terminal's cancel or
	// refund acts only on sales made under the same key.
	AuthKey func(listener string) string
	// Guard, when set, refuses new sales while the journal fails and holds
	// outcomes it could not record (see JournalGuard). Nil: none.
	Guard JournalGuard
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
		return Declinef(codes.Duplicate, "duplicate of transaction %d still in flight", stored.ID)
	}
	t.Code, t.Reason = codes.Code(stored.RC), fmt.Sprintf("duplicate of transaction %d: stored answer", stored.ID)
	t.ApprovalCode, t.RRN = stored.ApprovalCode, stored.RRN
	t.Route = stored.Route
	return nil
}

// Record journals purchases and authorisations: a repeat of a journaled
// request gets the stored answer (or 94) and never reaches the issuer; the
// request is journaled durably before it leaves for the issuer; the
// outcome is journaled durably before the terminal hears it; a sale the
// issuer did not answer is answered 91 and its reversal queued. While the
// journal takes no writes (Ledger.Guard) a new request is answered 91
// without reaching the issuer; an outcome the journal refuses is never an
// approval: it is held and settled (reversed) once the journal recovers.
func Record(l Ledger) Stage {
	return Stage{Name: "journal", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if t.MTI != specs.MTIAuthRequest && t.MTI != specs.MTIFinancialRequest {
				return next.Handle(ctx, t)
			}
			key := KeyOf(t)
			if stored, err := l.Sales.FindByKey(ctx, key); err == nil {
				return l.answerRepeat(ctx, t, stored)
			}
			row := l.requestRow(t, key)
			var beginErr error
			untrack := func() {}
			t.BeforeSend = func(ctx context.Context) error {
				enc, err := l.Cipher.EncryptPAN(ctx, hsm.KeyRef{Label: l.DataKey}, t.PAN)
				if err != nil {
					return fmt.Errorf("encrypting PAN for the journal: %w", err)
				}
				row.State, row.Route = store.Forwarded, t.Route
				row.IssuerSTAN, _ = t.IssuerRequest.GetString(specs.STAN)
				row.IssuerTxTime, _ = t.IssuerRequest.GetString(specs.TransmissionDateTime)
				row.RRN, _ = t.IssuerRequest.GetString(specs.RRN)
				row.MaskedPAN, row.Token, row.CardExpiry = pan.Mask(t.PAN), t.Token, t.CardExpiry
				if row.CardExpiry == "" {
					row.CardExpiry, _ = t.Request.GetString(specs.Expiry)
				}
				row.PANKey, row.PANKeyVersion, row.PANCiphertext = enc.Key.Label, enc.Key.Version, enc.Ciphertext
				stored, err := l.Sales.Begin(ctx, row)
				if errors.Is(err, store.ErrDuplicate) {
					return Declinef(codes.Duplicate, "duplicate of transaction %d in flight", stored.ID)
				}
				if err != nil {
					beginErr = err
					return err
				}
				row = stored
				untrack = l.track(row.ID)
				return nil
			}
			if err := l.admit(); err != nil {
				return err
			}
			err := next.Handle(ctx, t)
			defer untrack()
			if beginErr != nil {
				// Not journaled, so not sent: nothing to record either.
				return l.notSent(beginErr)
			}
			if werr := l.outcome(ctx, t, &row, err); werr != nil {
				if row.ID == 0 {
					// Never left: nothing to hold, but the journal fails.
					l.journalFailed(werr)
					return fmt.Errorf("journaling the outcome: %w", werr)
				}
				// Not durable: the terminal must not hear an approval.
				return l.hold(t, row, err, werr)
			}
			return err
		})
	}}
}

func (l Ledger) outcome(ctx context.Context, t *Txn, row *store.Txn, err error) error {
	var d *Decline
	if row.ID == 0 {
		// Never left the switch: record the refusal (once; a repeat finds it).
		if errors.As(err, &d) && d.Code == codes.Duplicate {
			return nil
		}
		code := t.Code
		if err != nil {
			code = l.Classify(err)
		}
		// The card as presented, for comparing a repeat with: the token
		// when there is one (t.PAN is then the card behind it).
		row.State, row.RC, row.MaskedPAN, row.Token = store.Failed, string(code), pan.Mask(t.PAN), t.Token
		if _, berr := l.Sales.Begin(ctx, *row); berr != nil && !errors.Is(berr, store.ErrDuplicate) {
			return berr
		}
		return nil
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
	case l.NoAnswer(err):
		// The reversal is queued before the row leaves "forwarded": a
		// crash in between leaves a row that recovery reverses (again, at
		// worst), never a timed-out sale nobody reverses.
		h := &Held{Row: *row, Reverse: true, Event: "no answer from the issuer: terminal told 91, reversal queued"}
		if serr := l.SettleHeld(ctx, h); serr != nil {
			return &unsettled{held: h, err: serr}
		}
		return nil
	default:
		code := l.Classify(err)
		return l.Sales.Set(ctx, row.ID, store.Update{State: store.Failed, RC: string(code)}, "failed: "+string(code))
	}
}

// Package pipeline carries one transaction through the switch's ordered
// stages (network management, validate, route, forward, ...) and turns the
// outcome into the terminal's response, mapping errors to DE 39 in one place.
package pipeline

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs/codes"
)

// Txn is one transaction on its way through the switch.
type Txn struct {
	// Listener names the terminal/VAN listener it arrived on.
	Listener string
	// Received is when the switch read the request.
	Received time.Time
	// Request is the message as the terminal sent it (terminal dialect).
	// Stages read it; nothing writes to it.
	Request *iso8583.Message
	// Raw is the frame body the request was unpacked from (kept for MAC
	// verification on keyed listeners; nil otherwise).
	Raw []byte
	// IssuerPINBlock is DE 52 translated to the route's zone PIN key.
	IssuerPINBlock []byte
	// MTI of Request.
	MTI string
	// PAN is the card number the issuer leg carries (from DE 2 or track 2,
	// or the detokenized card). Never logged unmasked.
	PAN string
	// Token is the token the terminal presented (DE 2 / track 2), when the
	// card was a token; CardExpiry is then the real card's expiry (YYMM).
	Token      string
	CardExpiry string
	// Policy is the listener's policy, resolved once when the listener
	// builds the Txn: stages read it instead of looking the listener up.
	Policy ListenerPolicy
	// Route is the chosen issuer route's name; Issuer is that route's
	// policy and link, resolved once by the stage that picks the route.
	Route  string
	Issuer IssuerRoute
	// Repeat, when set, fixes the issuer-leg DE 11 and DE 7 of a give-back
	// that repeats an earlier attempt (AssignIDs sets them instead of
	// taking a new STAN).
	Repeat *IssuerIDs
	// QueuedID is the store-and-forward item a queued give-back is an
	// attempt of (the SAF worker's Txn only).
	QueuedID int64
	// RequestRecorded is set once the issuer request is journaled durably
	// (by the list's record stage): from then on it may have left.
	RequestRecorded bool
	// IssuerRequest and IssuerResponse are the issuer leg in its dialect.
	IssuerRequest  *iso8583.Message
	IssuerResponse *iso8583.Message
	// IssuerTime is how long the issuer exchange took (zero when the
	// request never left).
	IssuerTime time.Duration
	// ApprovalCode and RRN answer a duplicate from the journal when there
	// is no issuer response to take them from.
	ApprovalCode, RRN string
	// Code is the DE 39 the terminal gets, and Reason says why when the
	// switch decided it itself (a log field, never card data).
	Code   codes.Code
	Reason string

	// leg is the journal's state of this transaction, shared by the
	// list's record stages (see RecordSale, GiveBack).
	leg legState
	// sealedPAN is the detokenized card's PAN as the vault keeps it
	// (encrypted by the HSM), journaled instead of a new encryption.
	sealedPAN hsm.EncryptedPAN
	// nested is how long the stage after the running one took (stage
	// timing, see Dispatcher).
	nested time.Duration
}

// IssuerIDs are the issuer-leg DE 11 and DE 7 of an earlier attempt.
type IssuerIDs struct{ STAN, TxTime string }

// Handler processes a transaction. A stage that decides the answer sets
// t.Code (and returns nil) or returns an error that Code maps to DE 39.
type Handler interface {
	Handle(ctx context.Context, t *Txn) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, t *Txn) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, t *Txn) error { return f(ctx, t) }

// Stage is one named step; Wrap returns a handler that does the step and
// calls next to go on (or returns without calling it to stop the chain).
// Role marks the stages whose order is money safety (see CheckOrder).
type Stage struct {
	Name string
	Role Role
	Wrap func(next Handler) Handler
}

// Chain builds the handler from stages in order: stages[0] runs first.
func Chain(stages []Stage, final Handler) Handler {
	h := final
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i].Wrap(h)
	}
	return h
}

// Done is the end of every chain: it does nothing.
var Done Handler = HandlerFunc(func(context.Context, *Txn) error { return nil })

// Decline is a stage's decision to refuse a request: Err is the refusal
// (one of the Err... families of errcodes.go, which the error table maps
// to DE 39), Reason says why (a log field, never card data).
type Decline struct {
	Err    error
	Reason string
}

func (d *Decline) Error() string { return fmt.Sprintf("%v: %s", d.Err, d.Reason) }

// Unwrap is the refusal family.
func (d *Decline) Unwrap() error { return d.Err }

// Declinef returns a *Decline of family err with a formatted reason. The
// reason is logged: it must never carry card data.
func Declinef(err error, format string, a ...any) error {
	return &Decline{Err: err, Reason: fmt.Sprintf(format, a...)}
}

// PanicError is a recovered panic in a stage.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic in pipeline: %v", p.Value) }

// Process runs h on t, recovering a panic, and settles t.Code: from a
// stage's Decline, else from the error table (CodeOf), 96 for anything
// unexpected. It returns the error (nil when a stage set the code itself)
// for logging.
func Process(ctx context.Context, h Handler, t *Txn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
			t.Code, t.Reason = codes.SystemError, "internal error"
		}
	}()
	err = h.Handle(ctx, t)
	if err == nil {
		if t.Code == "" {
			t.Code, t.Reason = codes.SystemError, "no stage answered"
		}
		return nil
	}
	t.Code, t.Reason = CodeOf(err)
	return err
}

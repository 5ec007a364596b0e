package pipeline

import (
	"errors"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/route"
	"github.com/kbpay/switch/switch/tsp"
	"github.com/kbpay/switch/switch/upstream"
)

// Refusals the switch decides itself (a stage's Declinef names one).
var (
	ErrInvalidTxn       = errors.New("invalid transaction")
	ErrInvalidAmount    = errors.New("invalid amount")
	ErrInvalidCard      = errors.New("invalid card number")
	ErrOriginalNotFound = errors.New("original not found")
	ErrFormat           = errors.New("format error")
	ErrSecurity         = errors.New("security violation")
	// ErrNotSent: the request did not go to the issuer (journal gate
	// closed, journal failed, outcome held): 91, as for an issuer down.
	ErrNotSent      = errors.New("not sent to the issuer")
	ErrDuplicate    = errors.New("duplicate")
	ErrTotalsDiffer = errors.New("batch totals differ")
)

// errorCode is one row of the error table: an error family and the DE 39
// the terminal gets for it.
type errorCode struct {
	Err  error
	Code codes.Code
}

// errorCodes is THE table from errors to DE 39: Process answers the
// terminal with it and the journal records the same code (CodeOf). The
// first family err belongs to decides.
var errorCodes = []errorCode{
	{ErrInvalidTxn, codes.InvalidTxn},
	{ErrInvalidAmount, codes.InvalidAmount},
	{ErrInvalidCard, codes.InvalidCard},
	{ErrOriginalNotFound, codes.OriginalNotFound},
	{ErrFormat, codes.FormatError},
	{ErrSecurity, codes.SecurityViolation},
	{ErrNotSent, codes.IssuerUnavailable},
	{ErrDuplicate, codes.Duplicate},
	{ErrTotalsDiffer, codes.ReconcileError},
	{route.ErrNoRoute, codes.NoRoute},
	{upstream.ErrUnavailable, codes.IssuerUnavailable},
	{upstream.ErrNoAnswer, codes.IssuerUnavailable},
	{ErrUnusableAnswer, codes.IssuerUnavailable},
	{upstream.ErrSTANsExhausted, codes.IssuerUnavailable},
	{tsp.ErrUnknownToken, codes.InvalidCard},
	{tsp.ErrTokenExpired, codes.ExpiredToken},
	{tsp.ErrTokenUsed, codes.ExpiredToken},
	{tsp.ErrSuspended, codes.Suspended},
	{tsp.ErrOutsideDomain, codes.NotPermitted},
	{hsm.ErrInvalidPINBlock, codes.IncorrectPIN},
	// A payment HSM that cannot be reached in time: 91, the switch is
	// inoperative for this; one that answers an error code: 96.
	{hsm.ErrHSMUnavailable, codes.IssuerUnavailable},
	{hsm.ErrHSMTimeout, codes.IssuerUnavailable},
	{hsm.ErrHSMFault, codes.SystemError},
}

// CodeOf is the DE 39 for err from the error table (96 for anything not
// in it) and the reason logged with it: a *Decline's own reason, else the
// family's name.
func CodeOf(err error) (codes.Code, string) {
	var d *Decline
	for _, c := range errorCodes {
		if errors.Is(err, c.Err) {
			if errors.As(err, &d) {
				return c.Code, d.Reason
			}
			return c.Code, c.Err.Error()
		}
	}
	if errors.As(err, &d) {
		return codes.SystemError, d.Reason
	}
	return codes.SystemError, "system error"
}

// codeOf is CodeOf without the reason (what the journal records).
func codeOf(err error) codes.Code {
	c, _ := CodeOf(err)
	return c
}

// NoAnswer reports an error after which the issuer may have acted on a
// request that left (no answer, or one the switch cannot use): a sale is
// then reversed, a give-back repeated.
func NoAnswer(err error) bool {
	return errors.Is(err, upstream.ErrNoAnswer) || errors.Is(err, ErrUnusableAnswer)
}

// Unavailable reports an error after which the request never left (no
// signed-on link).
func Unavailable(err error) bool { return errors.Is(err, upstream.ErrUnavailable) }

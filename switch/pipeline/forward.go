package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
)

// Upstream is the link to one issuer approval host.
type Upstream interface {
	// Spec is the issuer's dialect.
	Spec() *iso8583.MessageSpec
	// Assign sets the issuer-leg STAN and RRN on req; the STAN is the
	// request's until Exchange ends or Abandon gives it up.
	Assign(req *iso8583.Message) error
	// Abandon gives up req's STAN when req will not be sent.
	Abandon(req *iso8583.Message)
	// Exchange sends req and waits for the answer within the route's timeout.
	Exchange(ctx context.Context, req *iso8583.Message) (*iso8583.Message, error)
}

// ErrUnusableAnswer is an issuer answer the switch cannot act on (no valid
// DE 39) to a request that left: the outcome is unknown, as with no answer
// (91 to the terminal and a reversal), never a plain failure.
var ErrUnusableAnswer = errors.New("unusable issuer answer: outcome unknown")

// switchOwned are the fields the switch sets on the issuer leg itself
// instead of copying them from the terminal: STAN and RRN are assigned per
// issuer link, DE 2 carries the real PAN, the PIN block goes only as
// translated to the zone key (with its KSN dropped), and the terminal's MACs
// are checked here, never forwarded (a MAC belongs to one link's key).
var switchOwned = func() map[int]bool {
	owned := map[int]bool{}
	for _, id := range config.SwitchOwnedFields {
		owned[id] = true
	}
	return owned
}()

// MapToIssuer builds the issuer-dialect request for t: same MTI, every field
// the terminal sent that the issuer's dialect defines and the route's
// mapping lets travel (except those the switch owns), the mapping's
// constants, and DE 2 = t.PAN.
func MapToIssuer(t *Txn, spec *iso8583.MessageSpec, m config.Mapping) (*iso8583.Message, error) {
	out := iso8583.NewMessage(spec)
	if err := fields.SetString(out, 0, t.MTI); err != nil {
		return nil, fmt.Errorf("setting the MTI: %w", err)
	}
	for id := range t.Request.GetFields() {
		if id == 0 || switchOwned[id] || !travels(m, id) {
			continue
		}
		if err := fields.Copy(out, t.Request, id); err != nil {
			return nil, fmt.Errorf("mapping DE %d: %w", id, err)
		}
	}
	if err := setConstants(out, m); err != nil {
		return nil, err
	}
	if t.PAN != "" {
		if err := fields.SetString(out, specs.PAN, t.PAN); err != nil {
			return nil, fmt.Errorf("setting DE 2: %w", err)
		}
	}
	if err := applyCard(out, t); err != nil {
		return nil, err
	}
	if t.IssuerPINBlock != nil {
		if err := out.BinaryField(specs.PINBlock, t.IssuerPINBlock); err != nil {
			return nil, fmt.Errorf("setting DE 52: %w", err)
		}
	}
	return out, nil
}

// MapRequest builds the issuer-dialect request of a sale on its route.
func MapRequest() Stage {
	return Stage{Name: "map", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			req, err := MapToIssuer(t, t.Issuer.Link.Spec(), mappingOf(t.Issuer.Link))
			if err != nil {
				return err
			}
			t.IssuerRequest = req
			return next.Handle(ctx, t)
		})
	}}
}

// stanHolder is a link that keeps a STAN owned beyond one exchange.
type stanHolder interface{ Hold(stan string) }

// hold keeps stan owned on up when up can.
func hold(up Upstream, stan string) {
	if h, ok := up.(stanHolder); ok {
		h.Hold(stan)
	}
}

// AssignIDs sets the issuer-leg STAN and RRN on t.IssuerRequest: new ones
// from the link (the STAN is the request's until its exchange ends or it is
// abandoned), or for a repeat the first attempt's DE 11 and DE 7, held for
// this exchange.
func AssignIDs() Stage {
	return Stage{Name: "assign", Role: RoleAssign, Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if r := t.Repeat; r != nil {
				if err := errors.Join(fields.SetString(t.IssuerRequest, specs.STAN, r.STAN),
					fields.SetString(t.IssuerRequest, specs.TransmissionDateTime, r.TxTime)); err != nil {
					return fmt.Errorf("setting the first attempt's DE 11 and DE 7: %w", err)
				}
				// The exchange ends one ownership of the STAN; a queued
				// item's own hold stays until it is settled.
				hold(t.Issuer.Link, r.STAN)
				return next.Handle(ctx, t)
			}
			if err := t.Issuer.Link.Assign(t.IssuerRequest); err != nil {
				return fmt.Errorf("assigning the issuer STAN: %w", err)
			}
			return next.Handle(ctx, t)
		})
	}}
}

// recordRequest is a list's record stage: record journals t's issuer
// request durably; when it cannot, the request does not leave (a new STAN
// is given up) and the error goes back to the outcome stage.
func recordRequest(name string, record func(ctx context.Context, t *Txn) error) Stage {
	return Stage{Name: name, Role: RoleRecordRequest, Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if err := record(ctx, t); err != nil {
				if t.Repeat == nil {
					t.Issuer.Link.Abandon(t.IssuerRequest)
				}
				return err
			}
			t.RequestRecorded = true
			return next.Handle(ctx, t)
		})
	}}
}

// Forward sends t.IssuerRequest on its route's link and waits for the
// answer within the route's timeout. The only stage that sends to an
// issuer.
func Forward() Stage {
	return Stage{Name: "forward", Role: RoleSend, Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			sent := time.Now()
			resp, err := t.Issuer.Link.Exchange(ctx, t.IssuerRequest)
			t.IssuerTime = time.Since(sent)
			if err != nil {
				return err
			}
			t.IssuerResponse = resp
			return next.Handle(ctx, t)
		})
	}}
}

// TakeAnswer takes a sale's DE 39 from the issuer's answer (mapped by the
// route's rules); an answer the switch cannot act on leaves the outcome
// unknown (ErrUnusableAnswer).
func TakeAnswer() Stage {
	return Stage{Name: "answer", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if err := checkAnswer(t.MTI, t.IssuerResponse); err != nil {
				return err
			}
			rc, _ := t.IssuerResponse.GetString(specs.ResponseCode)
			t.Code = mapCode(mappingOf(t.Issuer.Link), codes.Code(rc))
			return next.Handle(ctx, t)
		})
	}}
}

// ErrNotSettled is an answer to a queued give-back outside its route's
// settle codes: the item is tried again.
var ErrNotSettled = errors.New("not a settle code")

// Settles accepts a queued give-back's answer only with a DE 39 among the
// route's settle codes.
func Settles() Stage {
	return Stage{Name: "settles", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			rc, _ := t.IssuerResponse.GetString(specs.ResponseCode)
			if !slices.Contains(t.Issuer.SettleCodes, rc) {
				return fmt.Errorf("issuer answered %q, %w of route %s", rc, ErrNotSettled, t.Issuer.Name)
			}
			t.Code = codes.Code(rc)
			return next.Handle(ctx, t)
		})
	}}
}

// checkAnswer refuses an answer the switch cannot act on. The request
// left, so such an answer leaves the outcome unknown.
func checkAnswer(reqMTI string, resp *iso8583.Message) error {
	want, _ := specs.ResponseMTI(reqMTI)
	if got, _ := resp.GetMTI(); got != want {
		return fmt.Errorf("%w: MTI %s answers %s", ErrUnusableAnswer, got, reqMTI)
	}
	if rc, _ := resp.GetString(specs.ResponseCode); len(rc) != 2 {
		return fmt.Errorf("%w: no valid DE 39", ErrUnusableAnswer)
	}
	return nil
}

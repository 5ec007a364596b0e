package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moov-io/iso8583"

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
	out.MTI(t.MTI)
	for id := range t.Request.GetFields() {
		if id == 0 || switchOwned[id] || !travels(m, id) {
			continue
		}
		if err := CopyField(out, t.Request, id); err != nil {
			return nil, fmt.Errorf("mapping DE %d: %w", id, err)
		}
	}
	if err := setConstants(out, m); err != nil {
		return nil, err
	}
	if t.PAN != "" {
		if err := out.Field(specs.PAN, t.PAN); err != nil {
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

// Forward sends the transaction to its route's issuer and takes DE 39 (and
// the approval code, RRN, ...) from the answer.
func Forward(links func(route string) (Upstream, bool)) Stage {
	return Stage{Name: "forward", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			up, ok := links(t.Route)
			if !ok {
				return Declinef(codes.NoRoute, "route %s has no issuer link", t.Route)
			}
			m := mappingOf(up)
			req, err := MapToIssuer(t, up.Spec(), m)
			if err != nil {
				return err
			}
			t.IssuerRequest = req
			if err := up.Assign(req); err != nil {
				return err
			}
			if t.BeforeSend != nil {
				// Journal the request durably before it can be approved.
				if err := t.BeforeSend(ctx); err != nil {
					up.Abandon(req)
					return err
				}
			}
			sent := time.Now()
			resp, err := up.Exchange(ctx, req)
			t.IssuerTime = time.Since(sent)
			if err != nil {
				return err
			}
			t.IssuerResponse = resp
			if err := checkAnswer(t.MTI, resp); err != nil {
				return err
			}
			rc, _ := resp.GetString(specs.ResponseCode)
			t.Code = mapCode(m, codes.Code(rc))
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

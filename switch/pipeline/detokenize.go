package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/specs"
)

// Detokenizer turns a token into the card behind it; its errors (unknown,
// expired, suspended, outside domain, used) are mapped to DE 39 by the
// switch's classifiers like every other error.
type Detokenizer interface {
	IsToken(number string) bool
	// Detokenize returns the real PAN and card expiry (YYMM).
	Detokenize(ctx context.Context, token, merchantID, entryMode string) (pan, expiry string, err error)
}

// Detokenize replaces a token in DE 2 / track 2 by the real card for the
// issuer leg; the terminal's response keeps the token (Respond echoes the
// terminal's own DE 2). A PAN outside the token range passes untouched.
func Detokenize(d Detokenizer) Stage {
	return Stage{Name: "detokenize", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if !d.IsToken(t.PAN) {
				return next.Handle(ctx, t)
			}
			merchant, _ := t.Request.GetString(specs.MerchantID)
			entry, _ := t.Request.GetString(specs.POSEntryMode)
			p, expiry, err := d.Detokenize(ctx, t.PAN, merchant, entry)
			if err != nil {
				return fmt.Errorf("token %s: %w", pan.Mask(t.PAN), err)
			}
			t.Token, t.PAN, t.CardExpiry = t.PAN, p, expiry
			return next.Handle(ctx, t)
		})
	}}
}

// TokenReference is the private DE 48 value that tells the issuer which
// token the card was presented as: tag "TK", a 2-digit length, the token.
func TokenReference(token string) string {
	return fmt.Sprintf("TK%02d%s", len(token), token)
}

// applyCard puts the real card on the issuer request after detokenization:
// DE 2, DE 14 (the card's expiry, not the token's), track 2 rebuilt with
// the real PAN and expiry, and the token reference in DE 48.
func applyCard(out *iso8583.Message, t *Txn) error {
	if t.Token == "" {
		return nil
	}
	if t.CardExpiry != "" {
		if err := out.Field(specs.Expiry, t.CardExpiry); err != nil {
			return fmt.Errorf("setting DE 14: %w", err)
		}
	}
	if track, _ := t.Request.GetString(specs.Track2); track != "" {
		rest := ""
		if i := strings.IndexAny(track, "=D"); i >= 0 && len(track) >= i+5 {
			rest = track[i+5:] // service code and discretionary data
		}
		if err := out.Field(specs.Track2, t.PAN+"="+t.CardExpiry+rest); err != nil {
			return fmt.Errorf("setting DE 35: %w", err)
		}
	}
	if _, ok := out.GetSpec().Fields[specs.PrivateData]; ok {
		if err := out.Field(specs.PrivateData, TokenReference(t.Token)); err != nil {
			return fmt.Errorf("setting DE 48: %w", err)
		}
	}
	return nil
}

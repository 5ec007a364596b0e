package pipeline

import (
	"context"
	"fmt"
	"github.com/kbpay/switch/internal/zeropad"
	"github.com/kbpay/switch/iso/fields"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
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

// SealedDetokenizer is a Detokenizer that also hands back the PAN as the
// vault keeps it, encrypted by the HSM: the journal stores that ciphertext
// instead of having the HSM encrypt the PAN a second time (one HSM call
// per token payment, the decryption, as a card-number payment has one).
type SealedDetokenizer interface {
	DetokenizeSealed(ctx context.Context, token, merchantID, entryMode string) (pan, expiry string, sealed hsm.EncryptedPAN, err error)
}

// LimitlessDetokenizer is a Detokenizer that knows which tokens have no
// use limit (device tokens): their use only counts, so a sale with one is
// not looked up as a possible repeat before it is detokenized (JournalSale
// finds a repeat when it journals it, as for a card number). UseLimitless
// may read the token's rules where it keeps them (a device token met for
// the first time: most of them, in a vault of millions); false when it
// cannot tell, so that the sale is looked up first.
type LimitlessDetokenizer interface {
	UseLimitless(ctx context.Context, token string) bool
}

// Detokenize replaces a token in DE 2 / track 2 by the real card for the
// issuer leg; the terminal's response keeps the token (Respond echoes the
// terminal's own DE 2). A PAN outside the token range passes untouched.
func Detokenize(d Detokenizer) Stage {
	sd, sealing := d.(SealedDetokenizer)
	return Stage{Name: "detokenize", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if !d.IsToken(t.PAN) {
				return next.Handle(ctx, t)
			}
			merchant, _ := t.Request.GetString(specs.MerchantID)
			entry, _ := t.Request.GetString(specs.POSEntryMode)
			var p, expiry string
			var err error
			if sealing {
				p, expiry, t.sealedPAN, err = sd.DetokenizeSealed(ctx, t.PAN, merchant, entry)
			} else {
				p, expiry, err = d.Detokenize(ctx, t.PAN, merchant, entry)
			}
			if err != nil {
				return fmt.Errorf("token %s: %w", pan.Mask(t.PAN), err)
			}
			t.Token, t.PAN, t.CardExpiry = t.PAN, p, expiry
			return next.Handle(ctx, t)
		})
	}}
}

// sealPAN is t's PAN encrypted for the journal: a detokenized card's vault
// ciphertext when it is under the journal's data key (any version of it:
// versions are never retired, and the vault needs the same one), otherwise
// a new encryption by the HSM. PANs rest encrypted under the data key
// either way.
func (l Ledger) sealPAN(ctx context.Context, t *Txn) (hsm.EncryptedPAN, error) {
	if t.Token != "" && t.sealedPAN.Key.Label == l.DataKey && len(t.sealedPAN.Ciphertext) > 0 {
		return t.sealedPAN, nil
	}
	return l.Cipher.EncryptPAN(ctx, hsm.KeyRef{Label: l.DataKey}, t.PAN)
}

// TokenReference is the private DE 48 value that tells the issuer which
// token the card was presented as: tag "TK", a 2-digit length, the token.
func TokenReference(token string) string {
	return "TK" + zeropad.Pad(uint64(len(token)), 2) + token
}

// applyCard puts the real card on the issuer request after detokenization:
// DE 2, DE 14 (the card's expiry, not the token's), track 2 rebuilt with
// the real PAN and expiry, and the token reference in DE 48.
func applyCard(out *iso8583.Message, t *Txn) error {
	if t.Token == "" {
		return nil
	}
	if t.CardExpiry != "" {
		if err := fields.SetString(out, specs.Expiry, t.CardExpiry); err != nil {
			return fmt.Errorf("setting DE 14: %w", err)
		}
	}
	if track, _ := t.Request.GetString(specs.Track2); track != "" {
		rest := ""
		if i := strings.IndexAny(track, "=D"); i >= 0 && len(track) >= i+5 {
			rest = track[i+5:] // service code and discretionary data
		}
		if err := fields.SetString(out, specs.Track2, t.PAN+"="+t.CardExpiry+rest); err != nil {
			return fmt.Errorf("setting DE 35: %w", err)
		}
	}
	if _, ok := out.GetSpec().Fields[specs.PrivateData]; ok {
		if err := fields.SetString(out, specs.PrivateData, TokenReference(t.Token)); err != nil {
			return fmt.Errorf("setting DE 48: %w", err)
		}
	}
	return nil
}

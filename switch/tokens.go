package payswitch

import (
	"context"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/tsp"
)

// tokenPath adapts the token service to the pipeline's Detokenizer.
type tokenPath struct{ svc *tsp.Service }

func (p tokenPath) IsToken(number string) bool { return p.svc.IsToken(number) }

// UseLimitless: see pipeline.LimitlessDetokenizer.
func (p tokenPath) UseLimitless(ctx context.Context, token string) bool {
	return p.svc.UseLimitless(ctx, token)
}

func (p tokenPath) Detokenize(ctx context.Context, token, merchantID, entryMode string) (string, string, error) {
	card, err := p.svc.Detokenize(ctx, token, tsp.Use{MerchantID: merchantID, EntryMode: entryMode})
	return card.PAN, card.Expiry, err
}

// DetokenizeSealed also returns the vault's PAN ciphertext, which the
// journal stores instead of encrypting the PAN again.
func (p tokenPath) DetokenizeSealed(ctx context.Context, token, merchantID, entryMode string) (string, string, hsm.EncryptedPAN, error) {
	card, err := p.svc.Detokenize(ctx, token, tsp.Use{MerchantID: merchantID, EntryMode: entryMode})
	return card.PAN, card.Expiry, card.Sealed(), err
}

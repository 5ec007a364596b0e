package pipeline

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs/codes"
)

// sealedTokens is fakeTokens handing back the vault's ciphertext too: the
// card's PAN under key (xorCipher's encryption, so the journal can decrypt
// it).
type sealedTokens struct {
	fakeTokens
	key hsm.KeyRef
}

func (s sealedTokens) DetokenizeSealed(ctx context.Context, tok, mid, entry string) (string, string, hsm.EncryptedPAN, error) {
	p, exp, err := s.Detokenize(ctx, tok, mid, entry)
	return p, exp, hsm.EncryptedPAN{Key: s.key, Ciphertext: xorBytes([]byte(p))}, err
}

// TestTokenSaleJournalsVaultCiphertext: a token sale journals the vault's
// PAN ciphertext when it is under the journal's data key (no second HSM
// encryption); under another key, or for a card number, the HSM encrypts.
// Either way the journal row decrypts to the card.
func TestTokenSaleJournalsVaultCiphertext(t *testing.T) {
	tests := []struct {
		name     string
		card     string
		vaultKey hsm.KeyRef
		wantKey  hsm.KeyRef
		encrypts int
	}{
		{"token, vault under the data key (old version)", testToken, hsm.KeyRef{Label: "data-key", Version: 7}, hsm.KeyRef{Label: "data-key", Version: 7}, 0},
		{"token, vault under another key", testToken, hsm.KeyRef{Label: "old-data-key", Version: 2}, hsm.KeyRef{Label: "data-key", Version: 1}, 1},
		{"card number", tokenCard, hsm.KeyRef{Label: "data-key", Version: 7}, hsm.KeyRef{Label: "data-key", Version: 1}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newLedgerEnv(t)
			e.h = testListsWith(t, e.ledger, sealedTokens{key: tc.vaultKey}, testRoutes{up: e.issuer, gone: func() bool { return e.noRoute }}, "mac")
			row := e.approvedSale(e.sale(tc.card, 5000))
			if e.cipher.encrypts != tc.encrypts {
				t.Errorf("HSM encryptions %d, want %d", e.cipher.encrypts, tc.encrypts)
			}
			got := hsm.KeyRef{Label: row.PANKey, Version: row.PANKeyVersion}
			if got != tc.wantKey || !bytes.Equal(row.PANCiphertext, xorBytes([]byte(tokenCard))) {
				t.Errorf("journal row PAN under %+v, want %+v, of the card", got, tc.wantKey)
			}
			if tc.card == testToken && row.Token != testToken {
				t.Errorf("journal row token %q", row.Token)
			}
		})
	}
	// The plain Detokenizer (no ciphertext) still gets the PAN encrypted.
	e := newLedgerEnv(t)
	if rc := e.send(e.sale(testToken, 5000)); rc != codes.Approved || e.cipher.encrypts != 1 {
		t.Fatalf("plain detokenizer: %s, %d encryptions", rc, e.cipher.encrypts)
	}
}

// usedTokens is fakeTokens counting its uses, refusing them once refuse is
// set (a token suspended), and saying whether its tokens are limitless.
type usedTokens struct {
	fakeTokens
	limitless bool
	refuse    atomic.Bool
	uses      atomic.Int32
}

func (u *usedTokens) UseLimitless(context.Context, string) bool { return u.limitless }

func (u *usedTokens) Detokenize(ctx context.Context, tok, mid, entry string) (string, string, error) {
	if u.refuse.Load() {
		return "", "", errors.New("token suspended")
	}
	u.uses.Add(1)
	return u.fakeTokens.Detokenize(ctx, tok, mid, entry)
}

// TestRepeatOfTokenSale: a repeat of an approved token sale is answered
// from the journal (approved, the issuer asked once) even when the token
// is refused by then. A token with a use limit is looked up first, so the
// repeat never uses it; a limitless one is detokenized (its use counted)
// and the repeat found when it is journaled.
func TestRepeatOfTokenSale(t *testing.T) {
	tests := []struct {
		name      string
		limitless bool
		uses      int32 // after the sale and its repeat
	}{
		{"use limited: looked up first", false, 1},
		{"limitless: found when journaled", true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newLedgerEnv(t)
			tokens := &usedTokens{limitless: tc.limitless}
			e.h = testListsWith(t, e.ledger, tokens, testRoutes{up: e.issuer, gone: func() bool { return e.noRoute }}, "mac")
			s := e.sale(testToken, 5000)
			e.approvedSale(s)
			if rc := e.send(s); rc != codes.Approved {
				t.Fatalf("repeat answered %s", rc)
			}
			tokens.refuse.Store(true)
			if rc := e.send(s); rc != codes.Approved {
				t.Fatalf("repeat after the token was refused answered %s", rc)
			}
			if n := e.issuer.received(); n != 1 {
				t.Errorf("issuer asked %d times", n)
			}
			if got := tokens.uses.Load(); got != tc.uses {
				t.Errorf("%d uses, want %d", got, tc.uses)
			}
		})
	}
}

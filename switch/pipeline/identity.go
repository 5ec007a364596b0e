package pipeline

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/store"
)

// scope is where t may act: its listener, DE 41, DE 42 and MAC key.
func (l Ledger) scope(t *Txn) store.Scope {
	tid, _ := t.Request.GetString(specs.TerminalID)
	mid, _ := t.Request.GetString(specs.MerchantID)
	return store.Scope{Listener: t.Listener, TerminalID: tid, MerchantID: mid, AuthKey: t.Policy.authKey()}
}

// requestRow is the journal row of request t as received: its key, where
// it came from (listener, MAC key, merchant), what it asks (processing
// code, amount, currency) and the hash a repeat must match.
func (l Ledger) requestRow(t *Txn, key store.Key) store.Txn {
	row := store.Txn{Key: key, Listener: t.Listener, AuthKey: t.Policy.authKey(), Amount: amountOf(t),
		ContentHash: contentHash(t, t.Policy.authKey())}
	row.MerchantID, _ = t.Request.GetString(specs.MerchantID)
	row.ProcCode, _ = t.Request.GetString(specs.ProcessingCode)
	row.Currency, _ = t.Request.GetString(specs.Currency)
	return row
}

// contentFields are the request fields, besides the duplicate key and the
// card, that a repeat must carry unchanged to be answered from the journal:
// processing code, amount, currency, merchant, the refund's reference to
// its sale (DE 37, DE 38) and the cancel's (DE 90, DE 95).
var contentFields = []int{
	specs.ProcessingCode, specs.Amount, specs.Currency, specs.MerchantID,
	specs.RRN, specs.ApprovalCode, specs.OriginalData, specs.ReplacementAmounts,
}

// contentHash is the SHA-256 (hex) of t's content apart from the card:
// MTI, listener, MAC key and contentFields, each length-prefixed. Card data
// never goes into it: a plain hash of a PAN can be reversed by trying the
// few candidates of a BIN; the card is compared apart (sameCard).
func contentHash(t *Txn, authKey string) string {
	var buf [512]byte
	b := buf[:0]
	put := func(v string) {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(append(append(b, ':'), v...), ';')
	}
	put("v1")
	put(t.MTI)
	put(t.Listener)
	put(authKey)
	var id [8]byte
	for _, f := range contentFields {
		v, _ := t.Request.GetString(f)
		put(string(strconv.AppendInt(id[:0], int64(f), 10)))
		put(v)
	}
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// sameCard reports whether presented (the card number a terminal sent: a
// token or a PAN) is row's card: its token when it was paid with one, else
// its PAN decrypted in the HSM, else (a row the switch refused before it
// encrypted anything) its masked PAN.
func (l Ledger) sameCard(ctx context.Context, presented string, row store.Txn) (bool, error) {
	switch {
	case row.Token != "":
		return equal(presented, row.Token), nil
	case len(row.PANCiphertext) > 0:
		p, err := l.Cipher.DecryptPAN(ctx, hsm.EncryptedPAN{Key: hsm.KeyRef{Label: row.PANKey, Version: row.PANKeyVersion},
			Ciphertext: row.PANCiphertext})
		if err != nil {
			return false, fmt.Errorf("decrypting the card of transaction %d: %w", row.ID, err)
		}
		return equal(presented, p), nil
	}
	return presented != "" && pan.Mask(presented) == row.MaskedPAN, nil
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// answerRepeat answers a request whose key (terminal, STAN, DE 7, MTI) is
// journaled already: from the stored row when it is the same request (same
// content and card), 94 otherwise. A same-key request with other content
// is never forwarded and never approved. A cancel (0400) carries no card of
// its own (DE 90 names the sale), so only its content is compared.
func (l Ledger) answerRepeat(ctx context.Context, t *Txn, stored store.Txn) error {
	if stored.ContentHash == "" || !equal(stored.ContentHash, contentHash(t, t.Policy.authKey())) {
		return Declinef(ErrDuplicate, "key of transaction %d with other content", stored.ID)
	}
	if t.MTI != specs.MTIReversal {
		presented := t.PAN
		if t.Token != "" {
			presented = t.Token // detokenized: t.PAN is the card behind it
		}
		same, err := l.sameCard(ctx, presented, stored)
		if err != nil {
			return err
		}
		if !same {
			return Declinef(ErrDuplicate, "key of transaction %d with another card", stored.ID)
		}
	}
	return answerStored(t, stored)
}

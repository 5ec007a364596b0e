package embedded

import (
	"strings"
	"sync"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// The two statements of every sale are written for what they carry: a
// field that is empty is a literal in the text ('' or 0), not a parameter,
// so it costs no binding (each bound text is copied into SQLite's memory),
// and an update names only the columns it changes. The texts are few (one
// per shape of request or update) and cached, and each is prepared once.

// shapes caches statement texts by kind and the mask of the fields given.
var shapes sync.Map // shapeKey -> string

type shapeKey struct {
	kind byte // 'i' insert, 'u' update
	mask uint64
}

// insertStatement is the INSERT of t (its times and owner set): it writes
// no row when t's key is journaled already.
func insertStatement(t *store.Txn) (string, []any) {
	created := t.CreatedAt.UnixMilli()
	var ct any
	if t.PANCiphertext != nil {
		ct = t.PANCiphertext
	}
	vals := [...]any{t.TerminalID, t.STAN, t.TxTime, t.MTI, t.Listener, t.MerchantID, t.ProcCode, t.Amount,
		t.Currency, t.MaskedPAN, t.Token, t.PANKey, int64(t.PANKeyVersion), ct, t.CardExpiry, t.Route, t.IssuerSTAN,
		t.IssuerTxTime, t.RRN, t.ApprovalCode, t.RC, string(t.State), t.Remaining, t.OriginalID, created, created,
		t.AuthKey, t.ContentHash, t.Owner}
	var mask uint64
	args := make([]any, 0, len(vals))
	for i, v := range vals {
		if !isZero(v) {
			mask |= 1 << i
			args = append(args, v)
		}
	}
	k := shapeKey{'i', mask}
	if q, ok := shapes.Load(k); ok {
		return q.(string), args
	}
	var b strings.Builder
	b.WriteString("INSERT INTO txns (" + sqlstore.TxnInsertList + ", first_event_at) VALUES (")
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(literalOr(v, mask&(1<<i) != 0))
	}
	b.WriteString(", 0) ON CONFLICT (terminal_id, stan, tx_time, mti) DO NOTHING")
	q, _ := shapes.LoadOrStore(k, b.String())
	return q.(string), args
}

// isZero reports whether v is a field left empty.
func isZero(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case int64:
		return x == 0
	case nil:
		return true
	}
	return false
}

// literalOr is "?" for a given field, else the empty field's literal.
func literalOr(v any, given bool) string {
	switch {
	case given:
		return "?"
	case v == nil:
		return "NULL"
	}
	if _, ok := v.(string); ok {
		return "''"
	}
	return "0"
}

// setColumns are the columns an Update may change besides its state, in
// setStatement's order.
var setColumns = []string{"route", "issuer_stan", "issuer_tx_time", "rrn", "approval_code", "rc", "masked_pan",
	"token", "card_expiry", "pan_key", "pan_key_version", "pan_ct", "remaining"}

// setStatement is the owner-checked UPDATE of row id by u at now (Unix
// ms): the state and time always, each other column only when u gives it
// (a text that is not empty, a key with its version, a ciphertext or a
// remaining amount that is not nil). With an event, it also keeps event
// (kind u.State) as the row's first event, and changes the row only when
// the row has no event yet (see first_event_at in schema.go).
func setStatement(u store.Update, now, id int64, owner, event string) (string, []any) {
	var ct, rem any
	if u.PANCiphertext != nil {
		ct = u.PANCiphertext
	}
	if u.Remaining != nil {
		rem = *u.Remaining
	}
	vals := [...]any{u.Route, u.IssuerSTAN, u.IssuerTxT, u.RRN, u.ApprovalCode, u.RC, u.MaskedPAN, u.Token,
		u.CardExpiry, u.PANKey, int64(u.PANKeyVersion), ct, rem}
	given := func(i int) bool {
		switch setColumns[i] {
		case "pan_key_version":
			return u.PANKey != ""
		case "pan_ct", "remaining":
			return vals[i] != nil
		}
		return vals[i] != ""
	}
	var mask uint64
	args := make([]any, 0, len(vals)+4)
	args = append(args, string(u.State), now)
	for i := range vals {
		if given(i) {
			mask |= 1 << i
			args = append(args, vals[i])
		}
	}
	kind := byte('u')
	if event != "" {
		kind = 'f'
		// At least 1: 0 and -1 say the row keeps no event.
		args = append(args, max(now, 1), string(u.State), event)
	}
	args = append(args, id, owner)
	k := shapeKey{kind, mask}
	if q, ok := shapes.Load(k); ok {
		return q.(string), args
	}
	var b strings.Builder
	b.WriteString("UPDATE txns SET state = ?, updated_at = ?")
	for i, c := range setColumns {
		if mask&(1<<i) != 0 {
			b.WriteString(", " + c + " = ?")
		}
	}
	if event != "" {
		b.WriteString(", first_event_at = ?, first_event_kind = ?, first_event_detail = ?")
	}
	b.WriteString(" WHERE id = ? AND owner IN (?, '')")
	if event != "" {
		b.WriteString(" AND first_event_at = 0")
	}
	q, _ := shapes.LoadOrStore(k, b.String())
	return q.(string), args
}

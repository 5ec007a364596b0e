package issuer

import (
	"maps"
	"sync"
)

// ledger holds the open-to-buy of the issuer's accounts. An account is
// opened lazily, with its configured opening balance, on its first
// transaction; one mutex serialises every balance change.
type ledger struct {
	opening   int64            // default opening balance
	overrides map[string]int64 // per-PAN opening balance
	mu        sync.Mutex
	available map[string]int64 // accounts that have been opened
}

func newLedger(opening int64, overrides map[string]int64) *ledger {
	return &ledger{
		opening:   opening,
		overrides: maps.Clone(overrides),
		available: make(map[string]int64),
	}
}

// openingBalance is the balance an account starts with.
func (l *ledger) openingBalance(pan string) int64 {
	if b, ok := l.overrides[pan]; ok {
		return b
	}
	return l.opening
}

// balance returns the available balance of an account (its opening balance
// when it has not been used yet).
func (l *ledger) balance(pan string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.available[pan]; ok {
		return b
	}
	return l.openingBalance(pan)
}

// debit reduces the account's open-to-buy by amount when it covers it and
// reports whether it did, with the balance after the attempt.
func (l *ledger) debit(pan string, amount int64) (after int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, opened := l.available[pan]
	if !opened {
		b = l.openingBalance(pan)
	}
	if amount > b {
		return b, false
	}
	b -= amount
	l.available[pan] = b
	return b, true
}

// Refunds and reversals will add a credit(pan, amount) here once the
// original transaction can be looked up.

// snapshot returns the balance of every account with an override or a
// transaction.
func (l *ledger) snapshot() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.overrides)+len(l.available))
	maps.Copy(out, l.overrides)
	maps.Copy(out, l.available)
	return out
}

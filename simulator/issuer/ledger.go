package issuer

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kbpay/switch/card/pan"
)

// Bounds on the ledger's memory under load: past them the oldest half of
// the records goes (a reversal of an original older than that finds
// nothing and is answered 00 without a balance change; a refund by
// reference finds nothing and is answered 25).
const (
	// ApprovalLimit bounds the approvals kept for reversals and refunds
	// by reference.
	ApprovalLimit = 200_000
	// reversalMemory bounds the reversals remembered for idempotency.
	reversalMemory = 200_000
	// refundMemory bounds the refunds remembered for idempotency.
	refundMemory = 200_000
)

// Approval is one approved purchase or authorisation as the issuer
// recorded it, with what has been given back of it (reversed, or refunded
// by reference) and what remains: Remaining = Amount - Reversed - Refunded.
type Approval struct {
	// MTI is the original request's MTI (0100 or 0200).
	MTI string `json:"mti"`
	// STAN and TransmissionDateTime are the original's DE 11 and DE 7 as
	// the issuer received them: what a reversal's DE 90 names.
	STAN                 string `json:"stan"`
	TransmissionDateTime string `json:"transmission_date_time"`
	// RRN is the original's DE 37 (the fallback look-up key).
	RRN string `json:"rrn"`
	// PAN is the full card number: test-facing, in-memory data. It is
	// never logged, never marshalled (json:"-") and never served by
	// AdminHandler.
	PAN string `json:"-"`
	// MaskedPAN is PAN with all but the first six and last four digits
	// masked.
	MaskedPAN    string    `json:"pan"`
	ApprovalCode string    `json:"approval_code"`
	Amount       int64     `json:"amount"`
	Reversed     int64     `json:"reversed"`
	Refunded     int64     `json:"refunded"`
	Remaining    int64     `json:"remaining"`
	At           time.Time `json:"at"`
}

// reversalOutcome is what a reversal did.
type reversalOutcome int

const (
	// reversalApplied credited the account.
	reversalApplied reversalOutcome = iota
	// reversalNothingLeft found the original fully reversed already.
	reversalNothingLeft
	// reversalNoOriginal found no approval to reverse (unknown, declined
	// or forgotten original).
	reversalNoOriginal
	// reversalDuplicate is a reversal already decided (same DE 11 + DE 7,
	// or a 0421 repeating a 0420 of the same original and amount).
	reversalDuplicate
)

func (o reversalOutcome) String() string {
	switch o {
	case reversalApplied:
		return "applied"
	case reversalNothingLeft:
		return "nothing_left"
	case reversalNoOriginal:
		return "no_original"
	case reversalDuplicate:
		return "duplicate"
	}
	return "unknown"
}

// reversal is a reversal request as the ledger needs it.
type reversal struct {
	repeat bool   // 0421
	advice bool   // 0420 or 0421
	self   string // the reversal's own DE 11 + DE 7 ("" when absent)
	orig   string // the original's DE 11 + DE 7 from DE 90
	rrn    string // DE 37
	pan    string // DE 2 ("" when absent)
	amount int64  // DE 4
}

// reversalResult is the ledger's decision on a reversal.
type reversalResult struct {
	outcome  reversalOutcome
	reversed int64    // credited now
	original Approval // the approval found (zero when none)
}

// ledger holds the open-to-buy of the issuer's accounts and the approvals
// that reversals and refunds by reference give back from. An account is
// opened lazily, with its configured opening balance, on its first
// transaction; one mutex serialises every balance change and every
// approval record update, so a give-back's look-up, credit and memory of
// its decision are atomic.
type ledger struct {
	opening   int64            // default opening balance
	overrides map[string]int64 // per-PAN opening balance
	mu        sync.Mutex
	available map[string]int64 // accounts that have been opened

	approvals []*Approval            // oldest first, at most ApprovalLimit
	byOrig    map[string]*Approval   // original DE 11 + DE 7
	byRRN     map[string][]*Approval // DE 37, oldest first

	decided *recall[reversalResult] // reversal's own DE 11 + DE 7
	advices *recall[bool]           // original key + amount of each 0420/0421
	refunds *recall[refundResult]   // refund's own DE 11 + DE 7
}

func newLedger(opening int64, overrides map[string]int64) *ledger {
	return &ledger{
		opening:   opening,
		overrides: maps.Clone(overrides),
		available: make(map[string]int64),
		byOrig:    make(map[string]*Approval),
		byRRN:     make(map[string][]*Approval),
		decided:   newRecall[reversalResult](reversalMemory),
		advices:   newRecall[bool](reversalMemory),
		refunds:   newRecall[refundResult](refundMemory),
	}
}

// openingBalance is the balance an account starts with.
func (l *ledger) openingBalance(pan string) int64 {
	if b, ok := l.overrides[pan]; ok {
		return b
	}
	return l.opening
}

// balanceLocked is balance with l.mu held.
func (l *ledger) balanceLocked(pan string) int64 {
	if b, ok := l.available[pan]; ok {
		return b
	}
	return l.openingBalance(pan)
}

// balance returns the available balance of an account (its opening balance
// when it has not been used yet).
func (l *ledger) balance(pan string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.balanceLocked(pan)
}

// approve debits a.Amount from a.PAN when the balance covers it, records the
// approval (a, with PAN and Amount set; its approval code from code) for
// later reversals and returns it.
func (l *ledger) approve(a Approval, code func() string) (Approval, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.balanceLocked(a.PAN)
	if a.Amount > b {
		return Approval{}, false
	}
	l.available[a.PAN] = b - a.Amount
	a.ApprovalCode = code()
	a.MaskedPAN = pan.Mask(a.PAN)
	a.Remaining = a.Amount
	rec := &a
	if len(l.approvals) >= ApprovalLimit {
		l.forgetOldestApprovals()
	}
	l.approvals = append(l.approvals, rec)
	l.byOrig[origKey(a.STAN, a.TransmissionDateTime)] = rec
	if a.RRN != "" {
		l.byRRN[a.RRN] = append(l.byRRN[a.RRN], rec)
	}
	return a, true
}

// forgetOldestApprovals drops the oldest half of the approvals and their
// index entries.
func (l *ledger) forgetOldestApprovals() {
	n := len(l.approvals) / 2
	for _, a := range l.approvals[:n] {
		k := origKey(a.STAN, a.TransmissionDateTime)
		if l.byOrig[k] == a {
			delete(l.byOrig, k)
		}
		if list := slices.DeleteFunc(l.byRRN[a.RRN], func(x *Approval) bool { return x == a }); len(list) == 0 {
			delete(l.byRRN, a.RRN)
		} else {
			l.byRRN[a.RRN] = list
		}
	}
	m := copy(l.approvals, l.approvals[n:])
	clear(l.approvals[m:])
	l.approvals = l.approvals[:m]
}

// reverse decides a reversal: it finds the original approval (by DE 90's
// STAN + DE 7, else by RRN) and credits min(amount, what remains of it),
// once per reversal.
func (l *ledger) reverse(r reversal) reversalResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.decided.get(r.self); ok {
		return reversalResult{outcome: reversalDuplicate, original: prev.original}
	}
	adviceKey := r.orig + "/" + strconv.FormatInt(r.amount, 10)
	if _, ok := l.advices.get(adviceKey); r.repeat && ok {
		l.decided.put(r.self, reversalResult{outcome: reversalDuplicate})
		return reversalResult{outcome: reversalDuplicate}
	}
	if r.advice {
		l.advices.put(adviceKey, true)
	}

	res := reversalResult{outcome: reversalNoOriginal}
	if a := l.findOriginal(r.orig, r.rrn, r.pan); a != nil {
		amt := min(r.amount, a.Remaining)
		if amt > 0 {
			a.Reversed += amt
			a.Remaining -= amt
			l.available[a.PAN] = l.balanceLocked(a.PAN) + amt
			res = reversalResult{outcome: reversalApplied, reversed: amt}
		} else {
			res.outcome = reversalNothingLeft
		}
		res.original = *a
	}
	l.decided.put(r.self, res)
	return res
}

// findOriginal returns the approval a give-back names: by orig (DE 90's
// STAN and DE 7), else the newest approval with the give-back's RRN that
// still has something left (else the newest with that RRN). An approval
// of another card than the give-back's DE 2 (card; "" matches any) never
// matches.
func (l *ledger) findOriginal(orig, rrn, card string) *Approval {
	samePAN := func(a *Approval) bool { return card == "" || card == a.PAN }
	if a := l.byOrig[orig]; a != nil && samePAN(a) {
		return a
	}
	var newest *Approval
	list := l.byRRN[rrn]
	for i := len(list) - 1; i >= 0; i-- {
		a := list[i]
		if !samePAN(a) {
			continue
		}
		if a.Remaining > 0 {
			return a
		}
		if newest == nil {
			newest = a
		}
	}
	return newest
}

// recall is a bounded memory of decisions by key: past limit entries the
// oldest half is forgotten. The empty key is never remembered (a request
// without its own DE 11 + DE 7 cannot be recognised when repeated). Not
// safe for concurrent use: the ledger's mutex guards it.
type recall[V any] struct {
	limit int
	m     map[string]V
	order []string // keys, oldest first
}

func newRecall[V any](limit int) *recall[V] {
	return &recall[V]{limit: limit, m: make(map[string]V)}
}

// get returns what was remembered under k.
func (r *recall[V]) get(k string) (V, bool) {
	v, ok := r.m[k]
	return v, ok
}

// put remembers v under k (a key remembered again keeps its age).
func (r *recall[V]) put(k string, v V) {
	if k == "" {
		return
	}
	if _, ok := r.m[k]; !ok {
		r.order = append(r.order, k)
	}
	r.m[k] = v
	if len(r.order) > r.limit {
		n := len(r.order) / 2
		for _, old := range r.order[:n] {
			delete(r.m, old)
		}
		r.order = slices.Delete(r.order, 0, n)
	}
}

// approvalsSnapshot returns a copy of the recorded approvals, oldest
// first.
func (l *ledger) approvalsSnapshot() []Approval {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Approval, len(l.approvals))
	for i, a := range l.approvals {
		out[i] = *a
	}
	return out
}

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

// origKey is the look-up key of an original: DE 11 (6 digits) + DE 7 (10).
func origKey(stan, dt string) string { return leftPad(stan, 6) + leftPad(dt, 10) }

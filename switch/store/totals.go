package store

import (
	"sort"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// What a journal row is to settlement and batch totals (EntryOf).
const (
	EntrySale   = "sale"
	EntryCancel = "cancel"
	EntryRefund = "refund"
)

// Entry is what one journal row adds to the totals.
type Entry struct {
	Kind string // EntrySale, EntryCancel or EntryRefund
	// Amount is the row's amount, in minor units of its currency.
	Amount int64
}

// Net is the entry's signed amount: sales positive, what went back
// (cancels, refunds) negative.
func (e Entry) Net() int64 {
	if e.Kind == EntrySale {
		return e.Amount
	}
	return -e.Amount
}

// EntryOf is the one definition of what settles and what a terminal's
// batch totals count: an approved sale (0100 or 0200 naming no original);
// a cancel (0400 naming a sale, answered 00, that took money off it: a
// cancel of a sale never charged has amount 0 and is not counted); a
// refund (0200 naming a sale, answered 00, amount above 0). Anything else
// (declined, in flight, refused, 0500, 0800) is no entry.
func EntryOf(t Txn) (Entry, bool) {
	switch {
	case t.OriginalID == 0 && t.State == Approved && (t.MTI == specs.MTIFinancialRequest || t.MTI == specs.MTIAuthRequest):
		return Entry{Kind: EntrySale, Amount: t.Amount}, true
	case t.OriginalID > 0 && t.RC == string(codes.Approved) && t.Amount > 0 && t.MTI == specs.MTIReversal:
		return Entry{Kind: EntryCancel, Amount: t.Amount}, true
	case t.OriginalID > 0 && t.RC == string(codes.Approved) && t.Amount > 0 && t.MTI == specs.MTIFinancialRequest:
		return Entry{Kind: EntryRefund, Amount: t.Amount}, true
	}
	return Entry{}, false
}

// Totals are counts and amounts in one currency, as an 0500 carries them
// (amounts positive: sales are debits, cancels debit reversals, refunds
// credits).
type Totals struct {
	Sales, SalesAmount     int64
	Cancels, CancelsAmount int64
	Refunds, RefundsAmount int64
}

// Add counts e.
func (tt *Totals) Add(e Entry) {
	switch e.Kind {
	case EntrySale:
		tt.Sales++
		tt.SalesAmount += e.Amount
	case EntryCancel:
		tt.Cancels++
		tt.CancelsAmount += e.Amount
	case EntryRefund:
		tt.Refunds++
		tt.RefundsAmount += e.Amount
	}
}

// Net is sales less what went back.
func (tt Totals) Net() int64 { return tt.SalesAmount - tt.CancelsAmount - tt.RefundsAmount }

// CurrencyTotals are Totals per ISO 4217 numeric currency code (DE 49 of
// the rows): amounts in different currencies are never added together.
type CurrencyTotals map[string]Totals

// Add counts t (EntryOf) under its currency and reports whether t counted.
func (c CurrencyTotals) Add(t Txn) bool {
	e, ok := EntryOf(t)
	if !ok {
		return false
	}
	tt := c[t.Currency]
	tt.Add(e)
	c[t.Currency] = tt
	return true
}

// Currencies lists the currencies with entries, sorted.
func (c CurrencyTotals) Currencies() []string {
	out := make([]string, 0, len(c))
	for cur := range c {
		out = append(out, cur)
	}
	sort.Strings(out)
	return out
}

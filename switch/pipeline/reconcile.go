package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
)

// Batch totals fields of an 0500 (ISO 8583:1987): sales are debits, their
// cancels debit reversals, refunds credits.
const (
	deCredits         = 74
	deDebits          = 76
	deDebitReversals  = 77
	deCreditsAmount   = 86
	deDebitsAmount    = 88
	deDebitRevsAmount = 89
)

// Currency of an 0500's totals: DE 50 (settlement currency, ISO 8583:1987),
// or DE 49 from terminals that put it there.
const deSettlementCurrency = 50

// Reconcile answers a terminal's 0500 batch totals: 00 when they agree with
// the journal's totals in the 0500's currency since the terminal's previous
// agreed 0500 in that currency, 95 when they do not (the difference goes to
// the log and the journal, listed by the admin API). Totals in other
// currencies never count: a batch sold in two currencies balances one 0500
// per currency, never against their sum. An 0500 naming no currency is
// compared with the batch's one currency; with two or more it is 95.
func Reconcile(l Ledger) Stage {
	return Stage{Name: "reconcile", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if t.MTI != specs.MTIReconciliation {
				return next.Handle(ctx, t)
			}
			key := KeyOf(t)
			if stored, err := l.Sales.FindByKey(ctx, key); err == nil {
				return answerStored(t, stored)
			}
			sent, err := terminalTotals(t)
			if err != nil {
				return err
			}
			currency, err := batchCurrency(t)
			if err != nil {
				return err
			}
			batches, err := l.Lookup.TerminalTotals(ctx, key.TerminalID)
			if err != nil {
				return err
			}
			row := store.Txn{Key: key, Listener: t.Listener, State: store.Answered, RC: string(codes.Approved)}
			diff := ""
			switch cs := batches.Currencies(); {
			case currency == "" && len(cs) > 1:
				diff = fmt.Sprintf("no currency (DE %d) for a batch in %s: terminal %+v, journal %+v",
					deSettlementCurrency, strings.Join(cs, " and "), sent, batches)
			case currency == "" && len(cs) == 1:
				currency = cs[0]
			}
			if have := batches[currency]; diff == "" && sent != have {
				diff = fmt.Sprintf("currency %s: terminal %+v, journal %+v", currency, sent, have)
			}
			row.Currency = currency
			if diff != "" {
				row.RC = string(codes.ReconcileError)
			}
			stored, err := l.Sales.Begin(ctx, row)
			if errors.Is(err, store.ErrDuplicate) {
				return answerStored(t, stored)
			}
			if err != nil {
				return err
			}
			if diff != "" {
				if err := l.Sales.Event(ctx, stored.ID, "reconcile_mismatch", diff); err != nil {
					return err
				}
				return Declinef(ErrTotalsDiffer, "batch totals differ: %s", diff)
			}
			t.Code = codes.Approved
			return nil
		})
	}}
}

// batchCurrency is the currency an 0500's totals are in (DE 50, else DE
// 49), "" when it names none.
func batchCurrency(t *Txn) (string, error) {
	for _, id := range []int{deSettlementCurrency, specs.Currency} {
		v, _ := t.Request.GetString(id)
		if v == "" {
			continue
		}
		if len(v) != 3 || !digits(v) {
			return "", Declinef(ErrFormat, "DE %d currency is not a 3-digit ISO 4217 code", id)
		}
		return v, nil
	}
	return "", nil
}

func terminalTotals(t *Txn) (store.Totals, error) {
	get := func(id int) (int64, error) {
		v, _ := t.Request.GetString(id)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, Declinef(ErrFormat, "DE %d is not a count or amount", id)
		}
		return n, nil
	}
	var tt store.Totals
	var err error
	for _, f := range []struct {
		id  int
		dst *int64
	}{
		{deDebits, &tt.Sales}, {deDebitsAmount, &tt.SalesAmount},
		{deDebitReversals, &tt.Cancels}, {deDebitRevsAmount, &tt.CancelsAmount},
		{deCredits, &tt.Refunds}, {deCreditsAmount, &tt.RefundsAmount},
	} {
		if *f.dst, err = get(f.id); err != nil {
			return tt, err
		}
	}
	return tt, nil
}

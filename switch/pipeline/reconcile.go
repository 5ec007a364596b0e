package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/journal"
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

// Reconcile answers a terminal's 0500 batch totals: 00 when they agree with
// the journal since the terminal's previous 0500, 95 when they do not (the
// difference goes to the log and the journal, listed by the admin API).
func Reconcile(l Ledger) Stage {
	return Stage{Name: "reconcile", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if t.MTI != specs.MTIReconciliation {
				return next.Handle(ctx, t)
			}
			key := KeyOf(t)
			if stored, err := l.Journal.FindByKey(ctx, key); err == nil {
				return answerStored(t, stored)
			}
			sent, err := terminalTotals(t)
			if err != nil {
				return err
			}
			have, err := l.Journal.TerminalTotals(ctx, key.TerminalID)
			if err != nil {
				return err
			}
			row := journal.Txn{Key: key, Listener: t.Listener, State: journal.Answered, RC: string(codes.Approved)}
			diff := ""
			if sent != have {
				row.RC = string(codes.ReconcileError)
				diff = fmt.Sprintf("terminal %+v, journal %+v", sent, have)
			}
			stored, err := l.Journal.Begin(ctx, row)
			if errors.Is(err, journal.ErrDuplicate) {
				return answerStored(t, stored)
			}
			if err != nil {
				return err
			}
			if diff != "" {
				if err := l.Journal.Event(ctx, stored.ID, "reconcile_mismatch", diff); err != nil {
					return err
				}
				return Declinef(codes.ReconcileError, "batch totals differ: %s", diff)
			}
			t.Code = codes.Approved
			return nil
		})
	}}
}

func terminalTotals(t *Txn) (journal.Totals, error) {
	get := func(id int) (int64, error) {
		v, _ := t.Request.GetString(id)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, Declinef(codes.FormatError, "DE %d is not a count or amount", id)
		}
		return n, nil
	}
	var tt journal.Totals
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

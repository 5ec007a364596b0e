package pipeline

import (
	"context"
	"fmt"
	"github.com/kbpay/switch/internal/zeropad"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/store"
)

// QueueReversal puts a (new) reversal of amount of sale orig in the SAF
// queue.
func (l Ledger) QueueReversal(ctx context.Context, orig store.Txn, amount int64) error {
	now := time.Now()
	_, err := l.Queue.Enqueue(ctx, store.SAFItem{TxnID: orig.ID, Route: orig.Route, Kind: giveBackKind(l.routeOf(orig.Route), false),
		Amount: amount, NextAt: now, ExpiresAt: now.Add(l.ReversalExpiry)})
	return err
}

// QueueRepeat queues the repeat of a give-back that already went (or may
// have gone) to the issuer as cancel row c: same DE 11, DE 7 and DE 37, so
// the issuer applies it at most once. The route keeps that STAN owned
// until the item is settled.
func (l Ledger) QueueRepeat(ctx context.Context, c store.Txn, kind string, amount int64) error {
	now := time.Now()
	it := store.SAFItem{TxnID: c.ID, Route: c.Route, Kind: kind, Amount: amount,
		NextAt: now, ExpiresAt: now.Add(l.ReversalExpiry), STAN: c.IssuerSTAN, TxTime: c.IssuerTxTime}
	id, err := l.Queue.Enqueue(ctx, it)
	if err != nil {
		return err
	}
	if it.ID = id; l.HoldQueued != nil {
		l.HoldQueued(it)
	} else if up := l.routeOf(c.Route).Link; up != nil {
		hold(up, c.IssuerSTAN)
	}
	return nil
}

// ReversalMessage builds the issuer-leg message that gives amount of sale
// orig back: a reversal (mti 0400, 0420 or 0421) or, for hosts that take no
// reversals, a refund by reference (0200 with processing code 20). Both
// name the original as the issuer received it: DE 90 (its MTI, DE 11 and
// DE 7) and DE 37 (its RRN), so the host applies the give-back only to a
// sale that took effect, and at most once (docs/giveback.md). DE 11 and
// DE 7 are the give-back's own; a repeat must carry the first attempt's.
// The route's constant fields (up's mapping) go on give-backs too.
func ReversalMessage(up Upstream, orig store.Txn, realPAN, kind, mti string, amount int64, now time.Time) (*iso8583.Message, error) {
	m := iso8583.NewMessage(up.Spec())
	proc := orig.ProcCode
	if len(proc) != 6 {
		proc = specs.ProcPurchase + "0000"
	}
	fields := map[int]string{
		specs.PAN: realPAN, specs.Amount: zeropad.Pad(uint64(amount), 12),
		specs.TransmissionDateTime: now.UTC().Format("0102150405"),
		specs.TerminalID:           orig.TerminalID, specs.MerchantID: orig.MerchantID, specs.Currency: orig.Currency,
	}
	if orig.CardExpiry != "" {
		fields[specs.Expiry] = orig.CardExpiry
	}
	fields[specs.RRN] = orig.RRN
	fields[specs.OriginalData] = orig.MTI + orig.IssuerSTAN + orig.IssuerTxTime + strings.Repeat("0", 22)
	if kind == store.KindRefund {
		m.MTI(specs.MTIFinancialRequest)
		fields[specs.ProcessingCode] = specs.ProcRefund + proc[2:]
	} else {
		m.MTI(mti)
		fields[specs.ProcessingCode] = proc
	}
	for id, v := range fields {
		if v == "" {
			continue
		}
		if err := m.Field(id, v); err != nil {
			return nil, fmt.Errorf("building %s DE %d: %w", kind, id, err)
		}
	}
	if err := setConstants(m, mappingOf(up)); err != nil {
		return nil, fmt.Errorf("building %s: %w", kind, err)
	}
	return m, nil
}

// RecordQueued journals a queued give-back's first attempt: its DE 11 and
// DE 7 are fixed for every repeat, durably, and the STAN stays owned until
// the item is settled. A repeat (Txn.Repeat) carries them already.
func RecordQueued(q store.Queue) Stage {
	return recordRequest("record-queued", func(ctx context.Context, t *Txn) error {
		if t.Repeat != nil {
			return nil
		}
		stan, _ := t.IssuerRequest.GetString(specs.STAN)
		tt, _ := t.IssuerRequest.GetString(specs.TransmissionDateTime)
		if err := q.AssignFirstAttempt(ctx, t.QueuedID, stan, tt); err != nil {
			return err
		}
		hold(t.Issuer.Link, stan)
		return nil
	})
}

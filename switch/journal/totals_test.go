package journal

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

func TestEntryOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		txn  Txn
		want Entry
		ok   bool
	}{
		{"approved sale", Txn{Key: Key{MTI: "0200"}, State: Approved, RC: "00", Amount: 500}, Entry{EntrySale, 500}, true},
		{"approved authorization", Txn{Key: Key{MTI: "0100"}, State: Approved, RC: "00", Amount: 500}, Entry{EntrySale, 500}, true},
		{"declined sale", Txn{Key: Key{MTI: "0200"}, State: Declined, RC: "51", Amount: 500}, Entry{}, false},
		{"sale in flight", Txn{Key: Key{MTI: "0200"}, State: Forwarded, Amount: 500}, Entry{}, false},
		{"cancel", Txn{Key: Key{MTI: "0400"}, OriginalID: 1, State: Answered, RC: "00", Amount: 200}, Entry{EntryCancel, 200}, true},
		{"cancel of a sale never charged", Txn{Key: Key{MTI: "0400"}, OriginalID: 1, State: Answered, RC: "00"}, Entry{}, false},
		{"cancel refused by the issuer", Txn{Key: Key{MTI: "0400"}, OriginalID: 1, State: Answered, RC: "05", Amount: 200}, Entry{}, false},
		{"cancel refused by the switch", Txn{Key: Key{MTI: "0400"}, OriginalID: -1, State: Answered, RC: "25", Amount: 200}, Entry{}, false},
		{"refund", Txn{Key: Key{MTI: "0200"}, OriginalID: 1, State: Answered, RC: "00", Amount: 300}, Entry{EntryRefund, 300}, true},
		{"refund of nothing", Txn{Key: Key{MTI: "0200"}, OriginalID: 1, State: Answered, RC: "00"}, Entry{}, false},
		{"reconciliation", Txn{Key: Key{MTI: "0500"}, State: Answered, RC: "00"}, Entry{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := EntryOf(tc.txn)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("EntryOf = %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestTerminalTotalsPerCurrency: a terminal's sales, cancels and refunds in
// KRW (410) and USD (840) are totalled per currency; an agreed 0500 for one
// currency closes only that currency's batch, one without a currency closes
// all; a mismatched one closes nothing; other terminals never count.
func TestTerminalTotalsPerCurrency(t *testing.T) {
	j := open(t, false)
	ctx := context.Background()
	stan := 0
	add := func(terminal, mti, currency string, amount, original int64, state State, rc string) {
		t.Helper()
		stan++
		row := Txn{Key: Key{TerminalID: terminal, STAN: fmt.Sprintf("%06d", stan), TxTime: "1201101500", MTI: mti},
			Currency: currency, Amount: amount, OriginalID: original, State: state, RC: rc}
		if _, err := j.Begin(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, want CurrencyTotals) {
		t.Helper()
		got, err := j.TerminalTotals(ctx, "TERM0001")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: totals %+v, want %+v", what, got, want)
		}
	}
	add("TERM0001", "0200", "410", 10_000, 0, Approved, "00")
	add("TERM0001", "0200", "410", 3_000, 0, Approved, "00")
	add("TERM0001", "0200", "840", 10, 0, Approved, "00")
	add("TERM0001", "0200", "840", 99, 0, Declined, "51")
	add("TERM0001", "0400", "410", 1_000, 1, Answered, "00")
	add("TERM0001", "0200", "840", 4, 3, Answered, "00")
	add("TERM0002", "0200", "410", 777, 0, Approved, "00")
	check("sales in 410 and 840", CurrencyTotals{
		"410": {Sales: 2, SalesAmount: 13_000, Cancels: 1, CancelsAmount: 1_000},
		"840": {Sales: 1, SalesAmount: 10, Refunds: 1, RefundsAmount: 4},
	})
	add("TERM0001", "0500", "410", 0, 0, Answered, "95")
	check("after a mismatched KRW 0500", CurrencyTotals{
		"410": {Sales: 2, SalesAmount: 13_000, Cancels: 1, CancelsAmount: 1_000},
		"840": {Sales: 1, SalesAmount: 10, Refunds: 1, RefundsAmount: 4},
	})
	add("TERM0001", "0500", "410", 0, 0, Answered, "00")
	add("TERM0001", "0200", "410", 500, 0, Approved, "00")
	check("after an agreed KRW 0500", CurrencyTotals{
		"410": {Sales: 1, SalesAmount: 500},
		"840": {Sales: 1, SalesAmount: 10, Refunds: 1, RefundsAmount: 4},
	})
	add("TERM0001", "0500", "840", 0, 0, Answered, "00")
	check("after an agreed USD 0500", CurrencyTotals{"410": {Sales: 1, SalesAmount: 500}})
	add("TERM0001", "0500", "", 0, 0, Answered, "00")
	add("TERM0001", "0200", "840", 20, 0, Approved, "00")
	check("after an agreed 0500 without a currency", CurrencyTotals{"840": {Sales: 1, SalesAmount: 20}})
}

package settle_test

import (
	"encoding/csv"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/settle"
	"github.com/kbpay/switch/switch/store"
)

// TestWriteSettlementTotalsPerCurrency: a route's file ends with one total
// line per currency (sorted), each with that currency's counts and net;
// amounts of different currencies are never added together.
func TestWriteSettlementTotalsPerCurrency(t *testing.T) {
	txn := func(id int64, mti, currency string, amount, original int64) store.Txn {
		return store.Txn{ID: id, Key: store.Key{TerminalID: "TERM0001", MTI: mti}, Currency: currency, Amount: amount,
			OriginalID: original, State: store.Approved, RC: "00", MaskedPAN: "941000******0005"}
	}
	lines := map[string][]settle.Line{"card-a": {
		{Kind: "sale", Txn: txn(1, "0200", "410", 10_000, 0), Amount: 10_000},
		{Kind: "sale", Txn: txn(2, "0200", "840", 10, 0), Amount: 10},
		{Kind: "sale", Txn: txn(3, "0200", "840", 25, 0), Amount: 25},
		{Kind: "cancel", Txn: txn(4, "0400", "410", 4_000, 1), Amount: -4_000},
		{Kind: "refund", Txn: txn(5, "0200", "840", 5, 3), Amount: -5},
	}}
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	paths, err := settle.Write(lines, day, t.TempDir())
	if err != nil || len(paths) != 1 {
		t.Fatalf("settlement files %v %v", paths, err)
	}
	f, err := os.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var totals [][]string
	for _, r := range rows {
		if r[0] == "total" {
			totals = append(totals, r)
		}
	}
	want := [][]string{
		{"total", "", "", "", "", "", "", "sales=1 cancels=1 refunds=0", "410", "6000"},
		{"total", "", "", "", "", "", "", "sales=2 cancels=0 refunds=1", "840", "30"},
	}
	if !reflect.DeepEqual(totals, want) {
		t.Fatalf("total lines\n%q\nwant\n%q", totals, want)
	}
	if len(rows) != 1+5+2 || rows[len(rows)-1][0] != "total" {
		t.Fatalf("want the header, 5 lines, then the totals: %q", rows)
	}
}

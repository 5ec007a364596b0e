package store

import (
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

package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
)

func TestRouteMapping(t *testing.T) {
	sale := purchase("9410000000000005", "000000015000")
	decline := with(sale, specs.Amount, "000000005100") // the fake issuer answers 51
	tests := []struct {
		name     string
		fields   map[int]string
		mapping  config.Mapping
		sent     map[int]string // field -> value the issuer must get
		absent   []int
		wantCode codes.Code
	}{
		{name: "no mapping: every field travels", fields: sale,
			sent:     map[int]string{specs.PAN: "9410000000000005", specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT0000001"},
			wantCode: codes.Approved},
		{name: "only the listed fields travel", fields: sale,
			mapping:  config.Mapping{Fields: []int{specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime, specs.TerminalID, specs.Currency}},
			sent:     map[int]string{specs.PAN: "9410000000000005", specs.TerminalID: "TERM0001", specs.Amount: "000000015000"},
			absent:   []int{specs.MerchantID},
			wantCode: codes.Approved},
		{name: "a dropped field is not sent", fields: sale,
			mapping:  config.Mapping{Drop: []int{specs.MerchantID}},
			sent:     map[int]string{specs.TerminalID: "TERM0001"},
			absent:   []int{specs.MerchantID},
			wantCode: codes.Approved},
		{name: "constants are set and replace the terminal's", fields: sale,
			mapping:  config.Mapping{Constants: map[int]string{32: "123456", specs.MerchantID: "ACQMERCHANT0001"}},
			sent:     map[int]string{32: "123456", specs.MerchantID: "ACQMERCHANT0001"},
			wantCode: codes.Approved},
		{name: "a mapped decline code", fields: decline,
			mapping: config.Mapping{ResponseCodes: map[string]string{"51": "05"}}, wantCode: "05"},
		{name: "an unmapped code passes through", fields: decline,
			mapping: config.Mapping{ResponseCodes: map[string]string{"14": "05"}}, wantCode: "51"},
		{name: "an approval is never mapped", fields: sale,
			mapping: config.Mapping{ResponseCodes: map[string]string{"00": "05"}}, wantCode: codes.Approved},
		{name: "nothing becomes an approval", fields: decline,
			mapping: config.Mapping{ResponseCodes: map[string]string{"51": "00"}}, wantCode: "51"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect)}
			h := Chain([]Stage{MapRequest(), AssignIDs(), Forward(), TakeAnswer()}, Done)
			txn := &Txn{Request: request(t, "0200", tt.fields), MTI: "0200", PAN: tt.fields[specs.PAN], Route: "card-a", Received: time.Now(),
				Issuer: IssuerRoute{Name: "card-a", Link: MappedUpstream{Upstream: up, Mapping: tt.mapping}}}
			if err := Process(context.Background(), h, txn); err != nil {
				t.Fatal(err)
			}
			if txn.Code != tt.wantCode {
				t.Fatalf("code = %s, want %s", txn.Code, tt.wantCode)
			}
			resp, err := Respond(txn)
			if err != nil {
				t.Fatal(err)
			}
			if rc, _ := resp.GetString(specs.ResponseCode); rc != string(tt.wantCode) {
				t.Errorf("terminal's DE 39 = %s, want %s", rc, tt.wantCode)
			}
			for id, want := range tt.sent {
				if got, _ := up.got.GetString(id); got != want {
					t.Errorf("issuer DE %d = %q, want %q", id, got, want)
				}
			}
			for _, id := range tt.absent {
				if up.got.GetField(id) != nil {
					t.Errorf("issuer got DE %d", id)
				}
			}
		})
	}
}

func TestGiveBackCarriesTheConstants(t *testing.T) {
	up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect)}
	orig := store.Txn{Key: store.Key{MTI: "0200", TerminalID: "TERM0001"}, ProcCode: "000000", IssuerSTAN: "000777",
		IssuerTxTime: "1125101500", RRN: "512345000777", MerchantID: "MERCHANT0000001", Currency: "410"}
	for _, kind := range []string{store.KindReversal, store.KindRefund} {
		m, err := ReversalMessage(MappedUpstream{Upstream: up, Mapping: config.Mapping{Constants: map[int]string{32: "123456"}}},
			orig, "9410000000000005", kind, specs.MTIReversal, 15000, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := m.GetString(32); got != "123456" {
			t.Errorf("%s DE 32 = %q, want the route's constant", kind, got)
		}
	}
}

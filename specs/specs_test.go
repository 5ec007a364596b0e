package specs_test

import (
	"bytes"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

func sampleMessage(t *testing.T, spec *iso8583.MessageSpec) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(spec)
	m.MTI("0200")
	set := map[int]string{
		specs.PAN: "9410000000000001", specs.ProcessingCode: "000000", specs.Amount: "000000015000",
		specs.TransmissionDateTime: "1125101500", specs.STAN: "000123", specs.LocalTime: "101500",
		specs.LocalDate: "1125", specs.Expiry: "2812", specs.POSEntryMode: "051", specs.TerminalID: "TERM0001",
		specs.MerchantID: "MERCHANT000001", specs.Currency: "410", specs.RRN: "000000000001",
		specs.OriginalData: "020000012311251015000000000000000000000000", specs.NetworkMgmtCode: "301",
	}
	for id, v := range set {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	for _, id := range []int{specs.PINBlock, specs.MAC, specs.MAC2} {
		if err := m.BinaryField(id, []byte{1, 2, 3, 4, 5, 6, 7, 0xff}); err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	if err := m.BinaryField(specs.ICCData, []byte{0x9f, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDialectsRoundTrip(t *testing.T) {
	tests := []struct {
		name        string
		wantPrefix  string // MTI followed by the first bitmap byte, as packed
		binaryField []byte // how DE 52 appears in the packed message
	}{
		{specs.TerminalDialect, "0200\xf2", []byte{1, 2, 3, 4, 5, 6, 7, 0xff}},
		{specs.IssuerDialect, "0200F2", []byte("01020304050607FF")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := specs.Load(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			packed, err := sampleMessage(t, spec).Pack()
			if err != nil {
				t.Fatalf("pack: %v", err)
			}
			if !bytes.HasPrefix(packed, []byte(tt.wantPrefix)) {
				t.Errorf("packed starts % x, want prefix % x", packed[:6], tt.wantPrefix)
			}
			// Fixed text fields are space-padded on the wire and come back
			// trimmed; numeric fields travel exactly as given.
			if !bytes.Contains(packed, []byte("000000015000")) || !bytes.Contains(packed, []byte("MERCHANT000001 ")) {
				t.Error("fixed fields not as expected on the wire")
			}
			if !bytes.Contains(packed, tt.binaryField) {
				t.Errorf("packed message lacks DE 52 as % x", tt.binaryField)
			}
			got := iso8583.NewMessage(spec)
			if err := got.Unpack(packed); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			checks := map[int]string{specs.STAN: "000123", specs.Amount: "000000015000", specs.PAN: "9410000000000001",
				specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT000001", specs.NetworkMgmtCode: "301"}
			for id, want := range checks {
				if v, _ := got.GetString(id); v != want {
					t.Errorf("DE %d = %q, want %q", id, v, want)
				}
			}
			if b, _ := got.GetBytes(specs.ICCData); !bytes.Equal(b, []byte{0x9f, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8}) {
				t.Errorf("DE 55 = % x", b)
			}
			repacked, err := got.Pack()
			if err != nil || !bytes.Equal(repacked, packed) {
				t.Errorf("repack differs (err %v)", err)
			}
		})
	}
}

func TestResponseMTI(t *testing.T) {
	for in, want := range map[string]string{"0100": "0110", "0200": "0210", "0400": "0410", "0420": "0430", "0421": "0430", "0800": "0810"} {
		got, err := specs.ResponseMTI(in)
		if err != nil || got != want {
			t.Errorf("ResponseMTI(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"0210", "02", "ABCD", "0410"} {
		if _, err := specs.ResponseMTI(bad); err == nil {
			t.Errorf("ResponseMTI(%q) gave no error", bad)
		}
	}
}

func TestLoadRejectsSpecWithoutSTAN(t *testing.T) {
	_, err := specs.Parse([]byte(`{"name":"x","fields":{"0":{"type":"String","length":4,"enc":"ASCII","prefix":"ASCII.Fixed"}}}`))
	if err == nil {
		t.Fatal("spec without bitmap/STAN accepted")
	}
}

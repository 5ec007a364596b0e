package issuer

import (
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

func TestExpired(t *testing.T) {
	now := time.Date(2025, time.November, 30, 23, 59, 0, 0, time.UTC)
	tests := []struct {
		yymm string
		want bool
	}{
		{"2511", false}, {"2512", false}, {"2601", false}, {"9912", false},
		{"2510", true}, {"2411", true}, {"0001", true},
		{"512", true}, // "0512" unpacked without its leading zero
		{"2500", true}, {"2513", true}, {"25AB", true}, {"", true}, {"25111", true},
	}
	for _, tt := range tests {
		if got := expired(tt.yymm, now); got != tt.want {
			t.Errorf("expired(%q) = %v, want %v", tt.yymm, got, tt.want)
		}
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"15000", 15000, true}, {"000000015000", 15000, true}, {"1", 1, true},
		{"", 0, false}, {"0", 0, false}, {"000", 0, false}, {"-5", 0, false}, {"1.5", 0, false},
		{"12AB", 0, false}, {" 15", 0, false}, {"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseAmount(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseAmount(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestApprovalCodes(t *testing.T) {
	is, err := New(Config{Name: "x", Addr: "127.0.0.1:0", BINs: []string{"9"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := is.nextApprovalCode(); c != "000001" {
		t.Errorf("first approval code %q", c)
	}
	is.approvals.Store(999_998)
	for _, want := range []string{"999999", "000001"} {
		if c := is.nextApprovalCode(); c != want {
			t.Errorf("approval code %q, want %q", c, want)
		}
	}
}

// FuzzHandleRequest feeds arbitrary frame bodies through the codec and the
// request handler: nothing may panic, and every answer must pack, carry the
// response MTI and echo the STAN.
func FuzzHandleRequest(f *testing.F) {
	is, err := New(Config{Name: "fuzz", Addr: "127.0.0.1:0", BINs: []string{"9410"}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	codec := &frame.Codec{Header: frame.ASCII4, Spec: is.spec}
	for _, m := range []struct{ mti, pc, card, amount, expiry string }{
		{"0200", "000000", card("9410"), "15000", "2812"},
		{"0100", "000000", card("9410"), "999999999999", ""},
		{"0200", "200000", card("9420"), "0", "2001"},
		{"0400", "000000", card("9410"), "1000", ""},
	} {
		req := purchase(f, m.mti, m.card, m.amount, m.expiry)
		req.Field(specs.ProcessingCode, m.pc)
		if b, err := req.Pack(); err == nil {
			f.Add(b)
		}
	}
	for _, mti := range []string{"0400", "0420", "0421"} {
		req := purchase(f, mti, card("9410"), "15000", "")
		req.Field(specs.OriginalData, "0200"+"000001"+"1115100000"+strings.Repeat("0", 22))
		if b, err := req.Pack(); err == nil {
			f.Add(b)
		}
	}
	for _, pin := range []string{devkeys.DemoPIN, "9999"} {
		req := purchase(f, "0200", card("9410"), "15000", "")
		block, err := paycrypto.EncryptISO0(devkeys.Bytes(devkeys.ZPKHex), pin, card("9410"))
		if err != nil {
			f.Fatal(err)
		}
		req.BinaryField(specs.PINBlock, block)
		if b, err := req.Pack(); err == nil {
			f.Add(b)
		}
	}
	for _, code := range []string{"001", "301", "161"} {
		if b, err := netMgmt(f, code).Pack(); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "0800", "08002000000000000000", "0810", "\xff\xff\xff\xff", "0200F"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := codec.Unpack(body)
		if err != nil {
			return
		}
		resp := is.process(req, nil).resp
		is.ClearReceived()
		if resp == nil {
			return
		}
		packed, err := codec.Pack(resp)
		if err != nil {
			t.Fatalf("response does not pack: %v", err)
		}
		back, err := codec.Unpack(packed[frame.ASCII4.Size():])
		if err != nil {
			t.Fatalf("response does not unpack: %v", err)
		}
		reqMTI, _ := req.GetMTI()
		wantMTI, _ := specs.ResponseMTI(reqMTI)
		if mti, _ := back.GetMTI(); mti != wantMTI {
			t.Errorf("response MTI %q to %q", mti, reqMTI)
		}
		if get(back, specs.STAN) != get(req, specs.STAN) {
			t.Errorf("STAN %q answered with %q", get(req, specs.STAN), get(back, specs.STAN))
		}
		if get(back, specs.ResponseCode) == "" {
			t.Error("response without DE 39")
		}
	})
}

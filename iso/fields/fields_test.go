package fields_test

import (
	"bytes"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/specs"
)

// sale is a terminal-dialect 0200 with the usual text fields.
func sale(t *testing.T) *iso8583.Message {
	m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	m.MTI("0200")
	for id, v := range map[int]string{
		specs.PAN: "9410000000000005", specs.ProcessingCode: "000000", specs.Amount: "000000015000",
		specs.STAN: "000001", specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT0000001",
	} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestCopyAcrossDialects: a copied field packs in the destination's
// dialect exactly as moov's own Field/BinaryField would have set it, for
// text, binary and absent fields, and the MTI.
func TestCopyAcrossDialects(t *testing.T) {
	terminal, issuer := specs.MustLoad(specs.TerminalDialect), specs.MustLoad(specs.IssuerDialect)
	src := sale(t)
	if err := src.BinaryField(specs.PINBlock, []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []*iso8583.MessageSpec{terminal, issuer} {
		got, want := iso8583.NewMessage(dst), iso8583.NewMessage(dst)
		if err := fields.SetString(got, 0, "0200"); err != nil {
			t.Fatal(err)
		}
		want.MTI("0200")
		for _, id := range []int{specs.PAN, specs.Amount, specs.STAN, specs.MerchantID, specs.PINBlock, specs.Track2} {
			if err := fields.Copy(got, src, id); err != nil {
				t.Fatalf("DE %d: %v", id, err)
			}
			b, _ := src.GetBytes(id)
			if len(b) > 0 {
				if err := want.BinaryField(id, b); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := fields.SetString(got, specs.ResponseCode, "00"); err != nil {
			t.Fatal(err)
		}
		_ = want.Field(specs.ResponseCode, "00")
		if got.GetField(specs.Track2) != nil {
			t.Error("an absent field was copied")
		}
		g, err := got.Pack()
		if err != nil {
			t.Fatal(err)
		}
		w, err := want.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, w) {
			t.Errorf("packed\n%q, want\n%q", g, w)
		}
	}
}

// TestSetStringTakesTheValueAsIs: setting a text field that is there
// already allocates nothing (moov's Field copies the value twice).
func TestSetStringTakesTheValueAsIs(t *testing.T) {
	m := sale(t)
	allocs := testing.AllocsPerRun(100, func() {
		if err := fields.SetString(m, specs.ResponseCode, "05"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("SetString allocates %v times", allocs)
	}
	if rc, _ := m.GetString(specs.ResponseCode); rc != "05" {
		t.Errorf("DE 39 %q", rc)
	}
}

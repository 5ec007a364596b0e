package pan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

func TestMask(t *testing.T) {
	tests := map[string]string{
		"9410000000000005":    "941000******0005",
		"4111111111111111111": "411111*********1111",
		"1234567890123":       "123456***0123",
		"12345":               "*****",
		"":                    "",
	}
	for in, want := range tests {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	if got := MaskTrack2("9410000000000005=28121010000123"); got != "941000******0005=**************" {
		t.Errorf("MaskTrack2 = %q", got)
	}
}

func TestLuhn(t *testing.T) {
	for p, want := range map[string]bool{
		"9410000000000005": true, "4111111111111111": true, "9410000000000006": false,
		"41111111111111x1": false, "": false, "0": false,
	} {
		if Luhn(p) != want {
			t.Errorf("Luhn(%q) != %v", p, want)
		}
	}
	for _, partial := range []string{"941000000000000", "411111111111111", "999900000000123"} {
		if full := partial + string(CheckDigit(partial)); !Luhn(full) {
			t.Errorf("CheckDigit(%s) gave %s, not Luhn-valid", partial, full)
		}
	}
}

func TestScrub(t *testing.T) {
	in := `unpack field 2 "9410000000000005": bad; stan 000123; rrn 512345000777; long 12345678901234567890123`
	got := Scrub(in)
	if strings.Contains(got, "9410000000000005") || !strings.Contains(got, "941000******0005") {
		t.Errorf("Scrub left a PAN: %s", got)
	}
	if !strings.Contains(got, "000123") || !strings.Contains(got, "512345000777") || !strings.Contains(got, "12345678901234567890123") {
		t.Errorf("Scrub touched short or over-long numbers: %s", got)
	}
}

func TestDescribeMasksCardData(t *testing.T) {
	m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	m.MTI("0200")
	_ = m.Field(specs.PAN, "9410000000000005")
	_ = m.Field(specs.Track2, "9410000000000005=28121010000123")
	_ = m.BinaryField(specs.PINBlock, []byte{0x04, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde})
	var buf bytes.Buffer
	if err := Describe(m, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"9410000000000005", "2812101", "0412345678"} {
		if strings.Contains(out, secret) {
			t.Errorf("Describe shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "941000******0005") {
		t.Errorf("Describe lost the masked PAN:\n%s", out)
	}
}

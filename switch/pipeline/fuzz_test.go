package pipeline

import (
	"bytes"
	"context"
	"testing"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

func FuzzCheckICC(f *testing.F) {
	f.Add([]byte{0x9f, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x82, 0x02, 0x19, 0x80})
	f.Add([]byte{0x5f, 0x2a, 0x02, 0x04, 0x10})
	f.Add([]byte{0x9f, 0x10, 0x81, 0x01, 0xaa})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := CheckICC(b, 255); err != nil {
			return
		}
		// Whatever passes must re-parse the same after appending another
		// well-formed TLV (the walker consumed exactly the input).
		more := append(append([]byte{}, b...), 0x95, 0x01, 0x00)
		if len(more) <= 255 {
			if err := CheckICC(more, 255); err != nil {
				t.Fatalf("valid TLV + valid TLV rejected: %v", err)
			}
		}
	})
}

// FuzzValidateRequest unpacks arbitrary frames in the terminal dialect and
// runs validation and the DE 90 / DE 95 parsers on whatever unpacks: a
// hostile message must get a code, never a panic.
func FuzzValidateRequest(f *testing.F) {
	spec := specs.MustLoad(specs.TerminalDialect)
	c := &frame.Codec{Header: frame.Binary2, Spec: spec}
	for _, mti := range []string{"0200", "0400", "0500", "0800"} {
		m := request(f, mti, purchase("9410000000000005", "000000001000"))
		_ = m.Field(specs.OriginalData, "020000012311251015000000000000000000000000")
		_ = m.Field(specs.ReplacementAmounts, "000000000500000000000000000000000000000000")
		_ = m.BinaryField(specs.ICCData, []byte{0x9f, 0x26, 0x01, 0x00})
		packed, _ := m.Pack()
		f.Add(packed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := c.Unpack(body)
		if err != nil {
			return
		}
		mti, _ := msg.GetMTI()
		txn := &Txn{Request: msg, MTI: mti}
		err = validate(txn, MaxICCData)
		if err == nil && (mti == "0100" || mti == "0200") && len(txn.PAN) < 12 {
			t.Fatalf("accepted a card of %d digits", len(txn.PAN))
		}
		de90, _ := msg.GetString(specs.OriginalData)
		_, _ = parseDE90(de90)
		_, _ = cancelAmount(txn, 1000)
		resp, err := Respond(&Txn{Request: msg, MTI: "0200", Code: "30"})
		if err == nil {
			if _, err := resp.Pack(); err != nil && !bytes.Contains([]byte(err.Error()), []byte("field")) {
				t.Fatalf("response to a fuzzed request does not pack: %v", err)
			}
		}
		_ = context.Background()
	})
}

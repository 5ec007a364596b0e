package isotest

import (
	"fmt"
	"io"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/iso/frame/netheader"
)

// TPDU is a binary2+tpdu frame's TPDU: ID, destination NII, source NII.
type TPDU = [netheader.TPDUSize]byte

// Swapped is the TPDU that answers t: destination and source swapped.
func Swapped(t TPDU) TPDU { return TPDU{t[0], t[3], t[4], t[1], t[2]} }

// WriteTPDUFrame writes msg to w as one binary2+tpdu frame carrying tpdu.
func WriteTPDUFrame(t testing.TB, w io.Writer, tpdu TPDU, msg *iso8583.Message) {
	t.Helper()
	body, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	b, err := frame.AppendFrame(frame.TPDU{Length: frame.Binary2, Initiate: tpdu}, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatalf("writing a TPDU frame: %v", err)
	}
}

// ReadTPDUFrame reads one binary2+tpdu frame of spec: its TPDU and message.
func ReadTPDUFrame(r io.Reader, spec *iso8583.MessageSpec) (TPDU, *iso8583.Message, error) {
	hdr := frame.TPDU{Length: frame.Binary2}.New()
	if _, err := hdr.ReadHeader(r); err != nil {
		return TPDU{}, nil, fmt.Errorf("reading a TPDU frame header: %w", err)
	}
	body := make([]byte, hdr.Length())
	if _, err := io.ReadFull(r, body); err != nil {
		return TPDU{}, nil, fmt.Errorf("reading a TPDU frame: %w", err)
	}
	msg := iso8583.NewMessage(spec)
	if err := msg.Unpack(body); err != nil {
		return TPDU{}, nil, fmt.Errorf("unpacking a TPDU frame: %w", err)
	}
	return hdr.(*frame.TPDUHeader).TPDU, msg, nil
}

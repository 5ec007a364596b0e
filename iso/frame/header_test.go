package frame

import (
	"bytes"
	"errors"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

func TestParseHeaderNames(t *testing.T) {
	for _, name := range []string{"binary2", "binary4", "ascii4", "bcd2", "binary2+tpdu", "binary4+tpdu", "ascii4+tpdu", "bcd2+tpdu"} {
		h, err := ParseHeader(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.String() != name {
			t.Errorf("ParseHeader(%q).String() = %q", name, h)
		}
	}
	for _, bad := range []string{"binary3", "+tpdu", "tpdu", "binary2+tpdu+tpdu"} {
		if _, err := ParseHeader(bad); err == nil {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}

// echoRequest is a terminal-dialect 0800 echo with STAN 000042.
func echoRequest() (*iso8583.MessageSpec, *iso8583.Message) {
	spec := specs.MustLoad(specs.TerminalDialect)
	msg := iso8583.NewMessage(spec)
	msg.MTI("0800")
	_ = msg.Field(specs.STAN, "000042")
	_ = msg.Field(specs.NetworkMgmtCode, "301")
	return spec, msg
}

// TestEveryFramingRoundTrips writes a message with each framing and
// reads it back; a TPDU answer swaps destination and source.
func TestEveryFramingRoundTrips(t *testing.T) {
	spec, msg := echoRequest()
	for _, h := range framings {
		t.Run(h.String(), func(t *testing.T) {
			c := &Codec{Header: h, Spec: spec, MaxLength: DefaultMaxLength}
			var buf bytes.Buffer
			if err := c.WriteMessage(&buf, msg); err != nil {
				t.Fatal(err)
			}
			got, err := c.ReadMessage(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if s, _ := got.GetString(specs.STAN); s != "000042" {
				t.Fatalf("STAN %q", s)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left over", buf.Len())
			}
		})
	}
}

func TestTPDUAnswerSwapsDestinationAndSource(t *testing.T) {
	spec, msg := echoRequest()
	packed, _ := msg.Pack()
	// From the terminal: TPDU 60 0012 0034 (to NII 012 from NII 034).
	terminalSide := &Codec{Header: TPDU{Length: Binary2, Initiate: [5]byte{0x60, 0x00, 0x12, 0x00, 0x34}}, Spec: spec}
	req, err := terminalSide.Pack(msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{0, byte(len(packed) + 5), 0x60, 0x00, 0x12, 0x00, 0x34}, packed...); !bytes.Equal(req, want) {
		t.Fatalf("request frame % x, want % x", req, want)
	}
	switchSide := &Codec{Header: TPDU{Length: Binary2}, Spec: spec}
	if _, err := switchSide.ReadMessage(bytes.NewReader(req)); err != nil {
		t.Fatal(err)
	}
	answer, err := switchSide.Pack(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := answer[2:7]; !bytes.Equal(got, []byte{0x60, 0x00, 0x34, 0x00, 0x12}) {
		t.Fatalf("answer TPDU % x, want 60 0034 0012", got)
	}
}

func TestTPDUShorterThanItsHeaderIsRefused(t *testing.T) {
	_, err := ReadFrame(bytes.NewReader([]byte{0, 3, 0x60, 0, 0}), TPDU{Length: Binary2}, 100)
	if !errors.Is(err, ErrBadHeader) {
		t.Fatalf("err = %v, want ErrBadHeader", err)
	}
}

// BenchmarkAppendFrameTPDU: framing one body behind a TPDU header into
// a reused buffer (what a Writer does per frame).
func BenchmarkAppendFrameTPDU(b *testing.B) {
	c := &Codec{Header: TPDU{Length: Binary2}}
	body := bytes.Repeat([]byte{'0'}, 300)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.appendFrame(buf[:0], body); err != nil {
			b.Fatal(err)
		}
	}
}

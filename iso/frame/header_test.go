package frame

import (
	"bytes"
	"errors"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/frame/netheader"
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

// TestTPDUAnswerSwapsDestinationAndSource: two requests with their own
// TPDUs are read before either is answered; each answer carries its own
// request's TPDU, destination and source swapped, whichever way it is
// written, and what the switch initiates carries its Initiate TPDU.
func TestTPDUAnswerSwapsDestinationAndSource(t *testing.T) {
	spec, msg := echoRequest()
	packed, _ := msg.Pack()
	// From two terminals: TPDU 60 0012 0034 (to NII 012 from NII 034) and
	// 60 0056 0078.
	from := [][5]byte{{0x60, 0x00, 0x12, 0x00, 0x34}, {0x60, 0x00, 0x56, 0x00, 0x78}}
	var wire bytes.Buffer
	for _, tpdu := range from {
		req, err := (&Codec{Header: TPDU{Length: Binary2, Initiate: tpdu}, Spec: spec}).Pack(msg)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte{0, byte(len(packed) + 5), tpdu[0], tpdu[1], tpdu[2], tpdu[3], tpdu[4]}, packed...); !bytes.Equal(req, want) {
			t.Fatalf("request frame % x, want % x", req, want)
		}
		wire.Write(req)
	}
	swapped := func(t [5]byte) []byte { return []byte{t[0], t[3], t[4], t[1], t[2]} }
	initiate := [5]byte{0x60, 0x00, 0x99, 0x00, 0x01}
	for _, tc := range []struct {
		name   string
		answer func(c *Codec, resp *iso8583.Message, received netheader.Message) ([]byte, error)
	}{
		{"Codec.Answering", func(c *Codec, resp *iso8583.Message, received netheader.Message) ([]byte, error) {
			c.Answering(resp, received)
			return c.Pack(resp)
		}},
		{"Writer.Answer", func(c *Codec, resp *iso8583.Message, received netheader.Message) ([]byte, error) {
			var out bytes.Buffer
			err := NewWriter(c, &out).Answer(resp, received)
			return out.Bytes(), err
		}},
		{"Writer.AnswerFields", func(c *Codec, resp *iso8583.Message, received netheader.Message) ([]byte, error) {
			var out bytes.Buffer
			err := NewWriter(c, &out).AnswerFields(fieldsOf(t, resp), received)
			return out.Bytes(), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switchSide := &Codec{Header: TPDU{Length: Binary2, Initiate: initiate}, Spec: spec}
			r := bytes.NewReader(wire.Bytes())
			var received []netheader.Message
			for range from {
				req, err := switchSide.ReadMessage(r)
				if err != nil {
					t.Fatal(err)
				}
				received = append(received, switchSide.TakeHeader(req))
			}
			for _, i := range []int{1, 0} { // the last read answered first
				resp := iso8583.NewMessage(spec)
				resp.MTI("0810")
				_ = resp.Field(specs.STAN, "000042")
				answer, err := tc.answer(switchSide, resp, received[i])
				if err != nil {
					t.Fatal(err)
				}
				if got, want := answer[2:7], swapped(from[i]); !bytes.Equal(got, want) {
					t.Errorf("answer to request %d: TPDU % x, want % x", i, got, want)
				}
			}
			own, err := switchSide.Pack(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := own[2:7]; !bytes.Equal(got, initiate[:]) {
				t.Errorf("request the switch initiates: TPDU % x, want % x", got, initiate)
			}
		})
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
		if buf, err = c.appendFrame(buf[:0], nil, body); err != nil {
			b.Fatal(err)
		}
	}
}

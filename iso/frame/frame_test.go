package frame

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Length{Binary2, ASCII4, BCD2, Binary4} {
		for _, n := range []int{1, 9, 10, 99, 100, 1234, 9999} {
			b, err := h.Append(nil, n)
			if err != nil {
				t.Fatalf("%s Append(%d): %v", h, n, err)
			}
			if len(b) != h.Size() {
				t.Fatalf("%s header is %d bytes", h, len(b))
			}
			got, err := h.Decode(b)
			if err != nil || got != n {
				t.Errorf("%s Decode(Append(%d)) = %d, %v", h, n, got, err)
			}
		}
	}
}

func TestReadFrameRejects(t *testing.T) {
	tests := []struct {
		name   string
		header Header
		input  []byte
		max    int
		want   error
	}{
		{"zero length", Binary2, []byte{0, 0}, 100, ErrZeroLength},
		{"over max", Binary2, []byte{0x10, 0x00, 'x'}, 100, ErrTooLong},
		{"ascii4 not digits", ASCII4, []byte("12a4xxxx"), 100, ErrBadHeader},
		{"ascii4 negative", ASCII4, []byte("-001x"), 100, ErrBadHeader},
		{"bcd2 not bcd", BCD2, []byte{0x1f, 0x00}, 100, ErrBadHeader},
		{"truncated body", Binary2, []byte{0, 10, 'a', 'b'}, 100, io.ErrUnexpectedEOF},
		{"truncated header", Binary2, []byte{0}, 100, io.ErrUnexpectedEOF},
		{"empty stream", ASCII4, nil, 100, io.EOF},
	}
	// A buffered reader (as iso8583-connection reads) takes the header
	// from its buffer: the same refusals either way.
	readers := map[string]func([]byte) io.Reader{
		"plain":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"buffered": func(b []byte) io.Reader { return bufio.NewReader(bytes.NewReader(b)) },
	}
	for _, tt := range tests {
		for rname, reader := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				_, err := ReadFrame(reader(tt.input), tt.header, tt.max)
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			})
		}
	}
}

func terminalCodec(t testing.TB) *Codec {
	return &Codec{Header: Binary2, MaxLength: DefaultMaxLength, Spec: specs.MustLoad(specs.TerminalDialect)}
}

func TestCodecRoundTripAndUndecodable(t *testing.T) {
	c := terminalCodec(t)
	msg := iso8583.NewMessage(c.Spec)
	msg.MTI("0200")
	_ = msg.Field(specs.STAN, "000042")
	_ = msg.Field(specs.TerminalID, "TERM0001")
	var buf bytes.Buffer
	if err := c.WriteMessage(&buf, msg); err != nil {
		t.Fatal(err)
	}
	// A good frame, then an undecodable one whose MTI is readable (bit 2
	// set but no DE 2 follows), then a good one again.
	good := append([]byte(nil), buf.Bytes()...)
	bad := []byte{0, 12, '0', '2', '0', '0', 0x40, 0, 0, 0, 0, 0, 0, 0}
	stream := append(append(append([]byte{}, good...), bad...), good...)

	var undecodable []*UndecodableError
	c.OnUndecodable = func(ue *UndecodableError) { undecodable = append(undecodable, ue) }
	r := bytes.NewReader(stream)
	for i := 0; i < 2; i++ {
		got, err := c.ReadMessage(r)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if stan, _ := got.GetString(specs.STAN); stan != "000042" {
			t.Errorf("STAN = %q", stan)
		}
	}
	if len(undecodable) != 1 || undecodable[0].MTI != "0200" {
		t.Fatalf("undecodable = %+v", undecodable)
	}

	// Without a readable MTI the reader gives up: the connection must end.
	_, err := c.ReadMessage(bytes.NewReader([]byte{0, 4, 0xff, 0xfe, 0xfd, 0xfc}))
	var ue *UndecodableError
	if !errors.As(err, &ue) || ue.MTI != "" {
		t.Fatalf("err = %v, want UndecodableError without MTI", err)
	}
}

// framings are every built-in framing, for the fuzzers.
var framings = []Header{Binary2, ASCII4, BCD2, Binary4, TPDU{Length: Binary2}, TPDU{Length: ASCII4}, TPDU{Length: BCD2}, TPDU{Length: Binary4}}

// FuzzReadFrame: the decoder of every framing never panics, never accepts
// an empty body or one over the maximum, and a frame it accepts is
// written back byte for byte (each header has one canonical form; a TPDU
// is echoed as read when answered by its own reader's codec swapped, so
// the re-encoding compares a header built from the one read).
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'}, uint8(0))
	f.Add([]byte("0003abc"), uint8(1))
	f.Add([]byte{0x00, 0x03, 1, 2, 3}, uint8(2))
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3}, uint8(3))
	f.Add([]byte{0, 8, 0x60, 0, 1, 0, 2, 'a', 'b', 'c'}, uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		h := framings[int(kind)%len(framings)]
		hdr, body, err := readFrame(bytes.NewReader(data), h, 512)
		if err != nil {
			return
		}
		if len(body) == 0 || len(body) > 512 {
			t.Fatalf("%s accepted a %d-byte body", h, len(body))
		}
		again := h.New()
		if th, ok := again.(*TPDUHeader); ok {
			th.TPDU = hdr.(*TPDUHeader).TPDU
		}
		out, err := appendFrame(h, again, nil, body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data[:len(out)]) {
			t.Fatalf("%s frame % x re-encoded as % x", h, data[:len(out)], out)
		}
	})
}

// FuzzCodec feeds arbitrary frames through both dialects: unpack must never
// panic, and whatever unpacks must pack and unpack again to the same fields.
func FuzzCodec(f *testing.F) {
	for _, name := range []string{specs.TerminalDialect, specs.IssuerDialect} {
		spec := specs.MustLoad(name)
		m := iso8583.NewMessage(spec)
		m.MTI("0200")
		_ = m.Field(specs.PAN, "9410000000000001")
		_ = m.Field(specs.Amount, "1000")
		_ = m.Field(specs.STAN, "1")
		_ = m.BinaryField(specs.PINBlock, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		packed, _ := m.Pack()
		f.Add(packed, name == specs.IssuerDialect)
	}
	f.Fuzz(func(t *testing.T, body []byte, issuer bool) {
		name := specs.TerminalDialect
		if issuer {
			name = specs.IssuerDialect
		}
		c := &Codec{Header: Binary2, Spec: specs.MustLoad(name)}
		msg, err := c.Unpack(body)
		if err != nil {
			return
		}
		checkSamePacking(t, "unpacked message", msg) // appendPacked packs as moov does, errors too
		packed, err := msg.Pack()
		if err != nil {
			return // moov accepts some inputs on unpack it refuses to pack (e.g. hex case)
		}
		again, err := c.Unpack(packed)
		if err != nil {
			t.Fatalf("repacked message does not unpack: %v", err)
		}
		for id := range msg.GetFields() {
			a, _ := msg.GetBytes(id)
			b, _ := again.GetBytes(id)
			if id > 1 && !bytes.Equal(a, b) {
				t.Fatalf("DE %d changed: %q -> %q", id, a, b)
			}
		}
	})
}

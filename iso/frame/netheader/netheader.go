// Package netheader holds the switch's framings as Message headers shaped
// like moov-io's network.Header: length headers (2- and 4-byte binary,
// 4-byte ASCII, 2-byte BCD) and a TPDU after the length.
package netheader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Message is one message's framing header: moov-io's network.Header with
// its ReadFrom/WriteTo named ReadHeader/WriteHeader (moov counts bytes in
// int, and go vet keeps those two names for io.ReaderFrom/io.WriterTo's
// int64 signatures).
type Message interface {
	// WriteHeader writes the encoded header to w.
	WriteHeader(w io.Writer) (int, error)
	// ReadHeader reads the header from r.
	ReadHeader(r io.Reader) (int, error)
	// SetLength sets the length of the message body.
	SetLength(length int)
	// Length is the length of the message body.
	Length() int
}

// Errors a header's ReadHeader or Append returns.
var (
	ErrTooLong   = errors.New("frame longer than the maximum")
	ErrBadHeader = errors.New("malformed length header")
)

// Header is a framing: what goes in front of each message on the wire.
// New makes the moov-io Message of one message; any implementation
// plugs in (Parse knows the built-in ones).
type Header interface {
	// String is the configuration name.
	String() string
	// New returns an empty header for one message.
	New() Message
	// Limit is the largest message body the framing can carry.
	Limit() int
}

// Answerer is a network header that echoes routing data of the message it
// answers (a TPDU, with destination and source swapped). A Codec keeps
// the header each request was read with beside that request
// (Codec.TakeHeader), and an answer's header answers its own request's.
type Answerer interface {
	AnswerTo(received Message)
}

// Length is a plain length header of one encoding.
type Length struct{ kind lengthKind }

type lengthKind int

const (
	kindBinary2 lengthKind = iota + 1
	kindASCII4
	kindBCD2
	kindBinary4
)

// The built-in length headers.
var (
	// Binary2 is a 2-byte big-endian binary length (the terminal default).
	Binary2 = Length{kindBinary2}
	// ASCII4 is a 4-digit ASCII decimal length.
	ASCII4 = Length{kindASCII4}
	// BCD2 is a 2-byte packed BCD length (0-9999).
	BCD2 = Length{kindBCD2}
	// Binary4 is a 4-byte big-endian binary length.
	Binary4 = Length{kindBinary4}
)

var lengths = map[string]Length{"binary2": Binary2, "ascii4": ASCII4, "bcd2": BCD2, "binary4": Binary4}

// HeaderNames are the framings Parse accepts.
const HeaderNames = "binary2, binary4, ascii4 or bcd2, each optionally with +tpdu"

// Parse maps a configuration name to a Header: binary2 (also ""),
// binary4, ascii4 or bcd2, and any of them with "+tpdu" (a 5-byte TPDU
// after the length, which the length counts).
func Parse(name string) (Header, error) {
	base, tpdu := strings.CutSuffix(name, "+tpdu")
	if base == "" && !tpdu {
		return Binary2, nil
	}
	l, ok := lengths[base]
	if !ok {
		return nil, fmt.Errorf("unknown length header %q (want %s)", name, HeaderNames)
	}
	if tpdu {
		return TPDU{Length: l}, nil
	}
	return l, nil
}

// String returns the configuration name of h.
func (h Length) String() string {
	for n, l := range lengths {
		if l == h {
			return n
		}
	}
	return fmt.Sprintf("header(%d)", int(h.kind))
}

// Size is the number of bytes of the header.
func (h Length) Size() int {
	if h.kind == kindASCII4 || h.kind == kindBinary4 {
		return 4
	}
	return 2
}

// Limit is the largest length the header can express.
func (h Length) Limit() int {
	switch h.kind {
	case kindBinary2:
		return 65535
	case kindBinary4:
		return 1 << 20 // far beyond any ISO 8583 message; MaxLength caps lower
	default:
		return 9999
	}
}

// Decode parses a header of h.Size() bytes.
func (h Length) Decode(b []byte) (int, error) {
	if len(b) != h.Size() {
		return 0, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), h.Size())
	}
	switch h.kind {
	case kindBinary2:
		return int(binary.BigEndian.Uint16(b)), nil
	case kindBinary4:
		n := binary.BigEndian.Uint32(b)
		if n > uint32(h.Limit()) {
			return 0, fmt.Errorf("%w: binary4 length %d over %d", ErrTooLong, n, h.Limit())
		}
		return int(n), nil
	case kindASCII4:
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%w: ascii4 header %q is not 4 digits", ErrBadHeader, b)
			}
			n = n*10 + int(c-'0')
		}
		return n, nil
	case kindBCD2:
		n := 0
		for _, c := range b {
			hi, lo := c>>4, c&0x0f
			if hi > 9 || lo > 9 {
				return 0, fmt.Errorf("%w: bcd2 header % x is not BCD", ErrBadHeader, b)
			}
			n = n*100 + int(hi)*10 + int(lo)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: unknown header kind %d", ErrBadHeader, int(h.kind))
}

// Append appends the header for a body of n bytes to dst.
func (h Length) Append(dst []byte, n int) ([]byte, error) {
	if n < 0 || n > h.Limit() {
		return dst, fmt.Errorf("%w: %d bytes do not fit a %s header", ErrTooLong, n, h)
	}
	switch h.kind {
	case kindBinary2:
		return binary.BigEndian.AppendUint16(dst, uint16(n)), nil
	case kindBinary4:
		return binary.BigEndian.AppendUint32(dst, uint32(n)), nil
	case kindASCII4:
		return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10)), nil
	case kindBCD2:
		return append(dst, byte((n/1000)<<4|(n/100%10)), byte((n/10%10)<<4|(n%10))), nil
	}
	return dst, fmt.Errorf("%w: unknown header kind %d", ErrBadHeader, int(h.kind))
}

// New returns a network header of this encoding.
func (h Length) New() Message { return &lengthHeader{h: h} }

// lengthHeader is one message's length header (Message).
type lengthHeader struct {
	h Length
	n int
}

func (l *lengthHeader) SetLength(n int) { l.n = n }
func (l *lengthHeader) Length() int     { return l.n }

func (l *lengthHeader) WriteHeader(w io.Writer) (int, error) {
	b, err := l.h.Append(nil, l.n)
	if err != nil {
		return 0, err
	}
	return w.Write(b)
}

func (l *lengthHeader) ReadHeader(r io.Reader) (int, error) {
	var b [4]byte
	k, err := io.ReadFull(r, b[:l.h.Size()])
	if err != nil {
		return k, fmt.Errorf("reading length header: %w", err)
	}
	l.n, err = l.h.Decode(b[:k])
	return k, err
}

// TPDUSize is the length of a TPDU: an ID byte (0x60), the destination
// NII and the source NII (2 bytes each).
const TPDUSize = 5

// DefaultTPDU is what a message the switch initiates carries (ID 0x60,
// both NIIs 0000) unless TPDU.Initiate says otherwise.
var DefaultTPDU = [TPDUSize]byte{0x60, 0, 0, 0, 0}

// TPDU is a length header followed by a 5-byte TPDU that the length
// counts. An answer carries the TPDU of the message it answers with
// destination and source swapped.
type TPDU struct {
	Length Length
	// Initiate is the TPDU of messages the switch sends first (zero:
	// DefaultTPDU).
	Initiate [TPDUSize]byte
}

// String returns the configuration name.
func (t TPDU) String() string { return t.Length.String() + "+tpdu" }

// Limit is the largest body: the length header's limit less the TPDU.
func (t TPDU) Limit() int { return t.Length.Limit() - TPDUSize }

// New returns a TPDU network header carrying t.Initiate until AnswerTo.
func (t TPDU) New() Message {
	init := t.Initiate
	if init == ([TPDUSize]byte{}) {
		init = DefaultTPDU
	}
	return &TPDUHeader{length: t.Length.New(), TPDU: init}
}

// TPDUHeader is one message's length header and TPDU.
type TPDUHeader struct {
	length Message
	// TPDU is the ID, destination NII and source NII as on the wire.
	TPDU [TPDUSize]byte
}

// SetLength sets the body length (the wire length adds the TPDU).
func (h *TPDUHeader) SetLength(n int) { h.length.SetLength(n + TPDUSize) }

// Length is the body length (the wire length less the TPDU).
func (h *TPDUHeader) Length() int { return h.length.Length() - TPDUSize }

// WriteHeader writes the length and the TPDU.
func (h *TPDUHeader) WriteHeader(w io.Writer) (int, error) {
	var buf bytes.Buffer
	if _, err := h.length.WriteHeader(&buf); err != nil {
		return 0, err
	}
	buf.Write(h.TPDU[:])
	return w.Write(buf.Bytes())
}

// ReadHeader reads the length and the TPDU; a length shorter than a TPDU
// is malformed.
func (h *TPDUHeader) ReadHeader(r io.Reader) (int, error) {
	n, err := h.length.ReadHeader(r)
	if err != nil {
		return n, err
	}
	if h.length.Length() < TPDUSize {
		return n, fmt.Errorf("%w: length %d cannot hold a TPDU", ErrBadHeader, h.length.Length())
	}
	k, err := io.ReadFull(r, h.TPDU[:])
	if err != nil {
		return n + k, fmt.Errorf("reading TPDU: %w", err)
	}
	return n + k, nil
}

// AnswerTo takes the TPDU of the message answered, destination and
// source swapped.
func (h *TPDUHeader) AnswerTo(received Message) {
	if got, ok := received.(*TPDUHeader); ok {
		t := got.TPDU
		h.TPDU = [TPDUSize]byte{t[0], t[3], t[4], t[1], t[2]}
	}
}

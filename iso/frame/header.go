package frame

import (
	"bytes"
	"fmt"

	"github.com/kbpay/switch/iso/frame/netheader"
)

// Header is a framing (a moov-io netheader.Message factory); see netheader.
type Header = netheader.Header

// Framings and their parts, from netheader.
type (
	Length     = netheader.Length
	TPDU       = netheader.TPDU
	TPDUHeader = netheader.TPDUHeader
	Answerer   = netheader.Answerer
)

// The built-in length headers.
var (
	Binary2 = netheader.Binary2
	ASCII4  = netheader.ASCII4
	BCD2    = netheader.BCD2
	Binary4 = netheader.Binary4
)

// ParseHeader maps a configuration name to a Header (netheader.Parse).
func ParseHeader(name string) (Header, error) { return netheader.Parse(name) }

// AppendFrame appends body framed by a fresh header of h to dst.
func AppendFrame(h Header, dst, body []byte) ([]byte, error) {
	out, err := appendFrame(h, h.New(), body)
	if err != nil {
		return dst, err
	}
	return append(dst, out...), nil
}

func appendFrame(h Header, hdr netheader.Message, body []byte) ([]byte, error) {
	if len(body) > h.Limit() {
		return nil, fmt.Errorf("%w: %d bytes do not fit a %s header", ErrTooLong, len(body), h)
	}
	hdr.SetLength(len(body))
	var buf bytes.Buffer
	buf.Grow(8 + len(body))
	if _, err := hdr.WriteHeader(&buf); err != nil {
		return nil, fmt.Errorf("writing %s header: %w", h, err)
	}
	buf.Write(body)
	return buf.Bytes(), nil
}

package frame

import (
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
	return appendFrame(h, h.New(), dst, body)
}

// appendFrame appends hdr, set to the length of body, and body to dst:
// the header is written straight after dst and the body copied once.
func appendFrame(h Header, hdr netheader.Message, dst, body []byte) ([]byte, error) {
	if len(body) > h.Limit() {
		return dst, fmt.Errorf("%w: %d bytes do not fit a %s header", ErrTooLong, len(body), h)
	}
	hdr.SetLength(len(body))
	out := appender(dst)
	if _, err := hdr.WriteHeader(&out); err != nil {
		return dst, fmt.Errorf("writing %s header: %w", h, err)
	}
	return append(out, body...), nil
}

// appender is an io.Writer appending to its slice.
type appender []byte

func (a *appender) Write(b []byte) (int, error) {
	*a = append(*a, b...)
	return len(b), nil
}

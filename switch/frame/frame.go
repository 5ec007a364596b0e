// Package frame reads and writes length-prefixed ISO 8583 frames (2-byte
// binary, 4-byte ASCII or 2-byte BCD length headers) with a maximum length,
// and plugs into iso8583-connection as its MessageReader and MessageWriter.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/moov-io/iso8583"
)

// Header is the kind of length header in front of each message.
type Header int

const (
	// Binary2 is a 2-byte big-endian binary length (the terminal default).
	Binary2 Header = iota + 1
	// ASCII4 is a 4-digit ASCII decimal length.
	ASCII4
	// BCD2 is a 2-byte packed BCD length (0-9999).
	BCD2
)

// DefaultMaxLength is the largest message body accepted unless configured.
const DefaultMaxLength = 8192

// Errors a frame reader returns; every one of them ends the connection since
// the byte stream can no longer be trusted.
var (
	ErrZeroLength = errors.New("zero-length frame")
	ErrTooLong    = errors.New("frame longer than the maximum")
	ErrBadHeader  = errors.New("malformed length header")
)

// ParseHeader maps a configuration name (binary2, ascii4, bcd2) to a Header.
func ParseHeader(name string) (Header, error) {
	switch name {
	case "binary2", "":
		return Binary2, nil
	case "ascii4":
		return ASCII4, nil
	case "bcd2":
		return BCD2, nil
	}
	return 0, fmt.Errorf("unknown length header %q (want binary2, ascii4 or bcd2)", name)
}

// String returns the configuration name of h.
func (h Header) String() string {
	switch h {
	case Binary2:
		return "binary2"
	case ASCII4:
		return "ascii4"
	case BCD2:
		return "bcd2"
	}
	return fmt.Sprintf("header(%d)", int(h))
}

// Size is the number of bytes of the header.
func (h Header) Size() int {
	if h == ASCII4 {
		return 4
	}
	return 2
}

// Limit is the largest length the header can express.
func (h Header) Limit() int {
	switch h {
	case Binary2:
		return 65535
	default:
		return 9999
	}
}

// Decode parses a header of h.Size() bytes.
func (h Header) Decode(b []byte) (int, error) {
	if len(b) != h.Size() {
		return 0, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), h.Size())
	}
	switch h {
	case Binary2:
		return int(binary.BigEndian.Uint16(b)), nil
	case ASCII4:
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%w: ascii4 header %q is not 4 digits", ErrBadHeader, b)
			}
			n = n*10 + int(c-'0')
		}
		return n, nil
	case BCD2:
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
	return 0, fmt.Errorf("%w: unknown header kind %d", ErrBadHeader, int(h))
}

// Append appends the header for a body of n bytes to dst.
func (h Header) Append(dst []byte, n int) ([]byte, error) {
	if n < 0 || n > h.Limit() {
		return dst, fmt.Errorf("%w: %d bytes do not fit a %s header", ErrTooLong, n, h)
	}
	switch h {
	case Binary2:
		return binary.BigEndian.AppendUint16(dst, uint16(n)), nil
	case ASCII4:
		return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10)), nil
	case BCD2:
		return append(dst, byte((n/1000)<<4|(n/100%10)), byte((n/10%10)<<4|(n%10))), nil
	}
	return dst, fmt.Errorf("%w: unknown header kind %d", ErrBadHeader, int(h))
}

// ReadFrame reads one header and body from r. maxLen <= 0 means the header's
// own limit.
func ReadFrame(r io.Reader, h Header, maxLen int) ([]byte, error) {
	var hb [4]byte
	if _, err := io.ReadFull(r, hb[:h.Size()]); err != nil {
		return nil, fmt.Errorf("reading length header: %w", err)
	}
	n, err := h.Decode(hb[:h.Size()])
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrZeroLength
	}
	if maxLen <= 0 {
		maxLen = h.Limit()
	}
	if n > maxLen {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLong, n, maxLen)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("reading %d-byte frame body: %w", n, err)
	}
	return body, nil
}

// UndecodableError is a frame that arrived whole but did not unpack with the
// spec. MTI is set when the first four bytes were a readable MTI; Partial
// holds the fields unpacked before the failure (STAN, terminal ID, ...) so
// that a format-error answer can still be matched by the sender.
type UndecodableError struct {
	MTI     string
	Partial *iso8583.Message
	Err     error
}

func (e *UndecodableError) Error() string {
	if e.MTI == "" {
		return fmt.Sprintf("undecodable message without a readable MTI: %v", e.Err)
	}
	return fmt.Sprintf("undecodable %s message: %v", e.MTI, e.Err)
}

// UndecodableError deliberately has no Unwrap: iso8583-connection keeps
// reading after an error that unwraps to its own UnpackError, and a frame
// without a readable MTI must end the connection instead.

// Codec frames and unpacks messages of one spec. It implements
// connection.MessageReader and connection.MessageWriter.
type Codec struct {
	Header    Header
	MaxLength int
	Spec      *iso8583.MessageSpec
	// OnUndecodable, when set, is called with a frame that did not unpack but
	// whose MTI could be read; the reader then goes on with the next frame.
	// When nil, or when no MTI could be read, ReadMessage returns the
	// *UndecodableError and the connection ends.
	OnUndecodable func(*UndecodableError)
	// WriteTimeout, when set, bounds each write on a writer that supports
	// deadlines (a net.Conn), so a peer that stops reading cannot block the
	// sender forever.
	WriteTimeout time.Duration
	// KeepRaw keeps each unpacked message's frame body until TakeRaw is
	// called with the message (MAC verification needs the bytes as sent).
	// A body nobody takes (a message the connection drops instead of
	// handing it on) is released when its message is garbage collected, so
	// a sender cannot make the codec hold frames without end.
	KeepRaw bool
	// Conn and FrameTimeout, when set, bound how long one frame may take
	// from its first byte to its last: a slow sender (one byte a second)
	// is cut off instead of holding the connection forever.
	Conn         interface{ SetReadDeadline(time.Time) error }
	FrameTimeout time.Duration
	// raw maps a weak pointer to each unpacked message to its frame body:
	// the entry never keeps its message alive, and a cleanup attached to
	// the message deletes it on every path, taken or not.
	raw sync.Map // weak.Pointer[iso8583.Message] -> []byte
}

// TakeRaw returns and forgets the frame body msg was unpacked from (nil
// unless KeepRaw, and nil the second time).
func (c *Codec) TakeRaw(msg *iso8583.Message) []byte {
	v, ok := c.raw.LoadAndDelete(weak.Make(msg))
	if !ok {
		return nil
	}
	return v.([]byte)
}

// keepRaw remembers body for msg until TakeRaw or until msg is collected.
func (c *Codec) keepRaw(msg *iso8583.Message, body []byte) {
	key := weak.Make(msg)
	c.raw.Store(key, body)
	runtime.AddCleanup(msg, func(k weak.Pointer[iso8583.Message]) { c.raw.Delete(k) }, key)
}

// ReadMessage reads and unpacks one message.
func (c *Codec) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	for {
		body, err := c.readFrame(r)
		if err != nil {
			return nil, err
		}
		msg, err := c.Unpack(body)
		if err == nil {
			if c.KeepRaw {
				c.keepRaw(msg, body)
			}
			return msg, nil
		}
		var ue *UndecodableError
		if errors.As(err, &ue) && ue.MTI != "" && c.OnUndecodable != nil {
			c.OnUndecodable(ue)
			continue
		}
		return nil, err
	}
}

// ErrSlowFrame is a frame that did not complete within FrameTimeout.
var ErrSlowFrame = errors.New("frame not completed in time (slow sender)")

func (c *Codec) readFrame(r io.Reader) ([]byte, error) {
	br, ok := r.(interface{ Peek(int) ([]byte, error) })
	if c.Conn == nil || c.FrameTimeout <= 0 || !ok {
		return ReadFrame(r, c.Header, c.MaxLength)
	}
	// Wait for the first byte without a deadline (idleness is the
	// connection's idle timeout's business), then give the frame its time.
	if _, err := br.Peek(1); err != nil {
		return nil, fmt.Errorf("reading length header: %w", err)
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.FrameTimeout))
	body, err := ReadFrame(r, c.Header, c.MaxLength)
	_ = c.Conn.SetReadDeadline(time.Time{})
	var ne interface{ Timeout() bool }
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return nil, fmt.Errorf("%w: %v", ErrSlowFrame, err)
	}
	return body, err
}

// Unpack unpacks one frame body; the error is an *UndecodableError.
func (c *Codec) Unpack(body []byte) (msg *iso8583.Message, err error) {
	msg = iso8583.NewMessage(c.Spec)
	defer func() {
		// A hostile frame must never take the process down, whatever a
		// field decoder does with it.
		if r := recover(); r != nil {
			msg, err = nil, &UndecodableError{MTI: readableMTI(body), Err: fmt.Errorf("unpack panicked: %v", r)}
		}
	}()
	if uerr := msg.Unpack(body); uerr != nil {
		mti := readableMTI(body)
		var partial *iso8583.Message
		if mti != "" {
			partial = msg
		}
		return nil, &UndecodableError{MTI: mti, Partial: partial, Err: uerr}
	}
	return msg, nil
}

func readableMTI(body []byte) string {
	if len(body) < 4 {
		return ""
	}
	for _, c := range body[:4] {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return string(body[:4])
}

// WriteMessage packs msg and writes header and body in one write.
func (c *Codec) WriteMessage(w io.Writer, msg *iso8583.Message) error {
	b, err := c.Pack(msg)
	if err != nil {
		return err
	}
	if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok && c.WriteTimeout > 0 {
		_ = d.SetWriteDeadline(time.Now().Add(c.WriteTimeout))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// Pack returns header and packed body of msg.
func (c *Codec) Pack(msg *iso8583.Message) ([]byte, error) {
	packed, err := msg.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing message: %w", err)
	}
	if c.MaxLength > 0 && len(packed) > c.MaxLength {
		return nil, fmt.Errorf("%w: packed message is %d > %d bytes", ErrTooLong, len(packed), c.MaxLength)
	}
	out := make([]byte, 0, c.Header.Size()+len(packed))
	out, err = c.Header.Append(out, len(packed))
	if err != nil {
		return nil, err
	}
	return append(out, packed...), nil
}

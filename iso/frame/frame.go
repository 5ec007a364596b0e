// Package frame reads and writes framed ISO 8583 messages (a length header
// — 2- or 4-byte binary, 4-byte ASCII, 2-byte BCD — optionally followed by
// a TPDU) with a maximum length, and plugs into iso8583-connection as its
// MessageReader and MessageWriter. Headers are moov-io netheader.Message
// values, so any other framing plugs in through the Header interface.
package frame

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/frame/netheader"
	"github.com/kbpay/switch/specs"
)

// DefaultMaxLength is the largest message body accepted unless configured.
const DefaultMaxLength = 8192

// Errors a frame reader returns; every one of them ends the connection since
// the byte stream can no longer be trusted.
var (
	ErrZeroLength = errors.New("zero-length frame")
	ErrTooLong    = netheader.ErrTooLong
	ErrBadHeader  = netheader.ErrBadHeader
)

// ReadFrame reads one header and body from r. maxLen <= 0 means the header's
// own limit.
func ReadFrame(r io.Reader, h Header, maxLen int) ([]byte, error) {
	_, body, err := readFrame(r, h, maxLen)
	return body, err
}

func readFrame(r io.Reader, h Header, maxLen int) (netheader.Message, []byte, error) {
	hdr, body, err := readPooled(r, h, maxLen)
	if err != nil {
		return nil, nil, err
	}
	return hdr, *body, nil
}

// readPooled reads one frame into a body buffer from the pool (release
// it with putBody once nothing refers to it). The header is nil for a
// plain length header read from a buffered reader (the common case,
// read without allocating).
func readPooled(r io.Reader, h Header, maxLen int) (netheader.Message, *[]byte, error) {
	var (
		hdr netheader.Message
		n   int
	)
	if l, ok := h.(Length); ok && isPeeker(r) {
		var err error
		if n, err = readLength(r.(peeker), l); err != nil {
			return nil, nil, err
		}
	} else {
		hdr = h.New()
		if _, err := hdr.ReadHeader(r); err != nil {
			return nil, nil, err
		}
		n = hdr.Length()
	}
	if n == 0 {
		return nil, nil, ErrZeroLength
	}
	if n < 0 {
		return nil, nil, fmt.Errorf("%w: negative length %d", ErrBadHeader, n)
	}
	if maxLen <= 0 {
		maxLen = h.Limit()
	}
	if n > maxLen {
		return nil, nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLong, n, maxLen)
	}
	body := getBody(n)
	if _, err := io.ReadFull(r, *body); err != nil {
		putBody(body)
		return nil, nil, fmt.Errorf("reading %d-byte frame body: %w", n, err)
	}
	return hdr, body, nil
}

// peeker is a buffered reader (iso8583-connection reads through a
// bufio.Reader): a length header is decoded in its buffer.
type peeker interface {
	Peek(int) ([]byte, error)
	Discard(int) (int, error)
}

func isPeeker(r io.Reader) bool {
	_, ok := r.(peeker)
	return ok
}

// readLength reads and decodes a length header in r's buffer.
func readLength(r peeker, l Length) (int, error) {
	b, err := r.Peek(l.Size())
	if err != nil {
		if len(b) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // as io.ReadFull reports a cut header
		}
		return 0, fmt.Errorf("reading length header: %w", err)
	}
	n, err := l.Decode(b)
	_, _ = r.Discard(len(b))
	return n, err
}

// bodies are frame body buffers reused between reads: a body is given
// back once its message is unpacked (every field decoder copies) unless
// it is kept (KeepRaw) or held by an error.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBody bounds the buffers kept: one rare huge frame must not pin
// its buffer in the pool.
const maxPooledBody = 16 << 10

func getBody(n int) *[]byte {
	b := bodies.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

func putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		bodies.Put(b)
	}
}

// UndecodableError is a frame that arrived whole but did not unpack with the
// spec. MTI is set when the first four bytes were a readable MTI; Partial
// holds the fields unpacked before the failure (STAN, terminal ID, ...) so
// that a format-error answer can still be matched by the sender.
type UndecodableError struct {
	MTI     string
	Partial *iso8583.Message
	Err     error
	// Header is the network header the frame came with when answers echo
	// it (a TPDU; nil otherwise): a format-error answer passes it to
	// Writer.Answer.
	Header netheader.Message
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
	// Header is the framing (default Binary2).
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
	// received maps each request read whose network header an answer
	// echoes (a TPDU) to that header, and answers each answer given
	// Answering to the header it goes out with: the header travels with
	// its message (as raw does), never as the codec's last read, since
	// the messages of many terminals (or connections) interleave.
	received, answers sync.Map // weak.Pointer[iso8583.Message] -> netheader.Message
	// echoing is set once a header was kept in received, answering once
	// one was in answers: until then (plain length headers) neither map
	// is looked at.
	echoing, answering atomic.Bool
}

func (c *Codec) header() Header {
	if c.Header == nil {
		return Binary2
	}
	return c.Header
}

// read reads one frame (into a pooled buffer); the header is returned
// when answers echo it (nil for a plain length header).
func (c *Codec) read(r io.Reader) (netheader.Message, *[]byte, error) {
	hdr, body, err := readPooled(r, c.header(), c.MaxLength)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := hdr.(Answerer); !ok {
		hdr = nil
	}
	return hdr, body, nil
}

// TakeRaw returns and forgets the frame body msg was unpacked from (nil
// unless KeepRaw, and nil the second time).
func (c *Codec) TakeRaw(msg *iso8583.Message) []byte {
	if !c.KeepRaw {
		return nil // nothing kept: no weak pointer made for msg to look it up
	}
	v, ok := c.raw.LoadAndDelete(weak.Make(msg))
	if !ok {
		return nil
	}
	return v.([]byte)
}

// TakeHeader returns and forgets the network header request msg was
// read with when its answer echoes it (a TPDU): nil for a plain length
// header, an answer-class message, and the second time. Give it to
// Answering (or Writer.Answer) with the answer.
func (c *Codec) TakeHeader(msg *iso8583.Message) netheader.Message {
	if !c.echoing.Load() {
		return nil
	}
	v, ok := c.received.LoadAndDelete(weak.Make(msg))
	if !ok {
		return nil
	}
	return v.(netheader.Message)
}

// Answering makes resp go out (WriteMessage, Pack, a Writer's
// WriteMessage) with the header that answers received, the header its
// request was read with (TakeHeader); a nil received changes nothing.
func (c *Codec) Answering(resp *iso8583.Message, received netheader.Message) {
	if hdr := c.answerHeader(received); hdr != nil {
		c.answering.Store(true)
		keepFor(&c.answers, resp, hdr)
	}
}

// answerHeader is a fresh header answering received (nil when received
// is nil or the framing echoes nothing).
func (c *Codec) answerHeader(received netheader.Message) netheader.Message {
	if received == nil {
		return nil
	}
	hdr := c.header().New()
	a, ok := hdr.(Answerer)
	if !ok {
		return nil
	}
	a.AnswerTo(received)
	return hdr
}

// keepRaw remembers body for msg until TakeRaw or until msg is collected.
func (c *Codec) keepRaw(msg *iso8583.Message, body []byte) {
	keepFor(&c.raw, msg, body)
}

// keepFor stores v for msg in m until it is taken or msg is collected:
// the key never keeps msg alive, and a cleanup deletes the entry.
func keepFor[V any](m *sync.Map, msg *iso8583.Message, v V) {
	key := weak.Make(msg)
	m.Store(key, v)
	runtime.AddCleanup(msg, func(k weak.Pointer[iso8583.Message]) { m.Delete(k) }, key)
}

// ReadMessage reads and unpacks one message.
func (c *Codec) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	for {
		hdr, buf, err := c.readFrame(r)
		if err != nil {
			return nil, err
		}
		body := *buf
		msg, err := c.Unpack(body)
		if err == nil {
			if c.KeepRaw {
				c.keepRaw(msg, body)
			} else {
				putBody(buf)
			}
			if hdr != nil {
				if mti, _ := msg.GetMTI(); specs.IsRequest(mti) { // only a request is answered
					c.echoing.Store(true)
					keepFor(&c.received, msg, hdr)
				}
			}
			return msg, nil
		}
		var ue *UndecodableError
		if errors.As(err, &ue) && ue.MTI != "" && c.OnUndecodable != nil {
			ue.Header = hdr
			c.OnUndecodable(ue)
			continue
		}
		return nil, err
	}
}

// ErrSlowFrame is a frame that did not complete within FrameTimeout.
var ErrSlowFrame = errors.New("frame not completed in time (slow sender)")

func (c *Codec) readFrame(r io.Reader) (netheader.Message, *[]byte, error) {
	br, ok := r.(bufferedReader)
	if c.Conn == nil || c.FrameTimeout <= 0 || !ok {
		return c.read(r)
	}
	// Wait for the first byte without a deadline (idleness is the
	// connection's idle timeout's business), then give the frame its time.
	if _, err := br.Peek(1); err != nil {
		return nil, nil, fmt.Errorf("reading length header: %w", err)
	}
	if c.buffered(br) {
		// The read that brought the first byte brought the whole frame:
		// nothing is left to wait for, so no deadline to set and clear.
		return c.read(r)
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.FrameTimeout))
	hdr, body, err := c.read(r)
	_ = c.Conn.SetReadDeadline(time.Time{})
	var ne interface{ Timeout() bool }
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return nil, nil, fmt.Errorf("%w: %v", ErrSlowFrame, err)
	}
	return hdr, body, err
}

// bufferedReader is a reader with a buffer to look into (a bufio.Reader,
// as iso8583-connection reads through).
type bufferedReader interface {
	peeker
	Buffered() int
}

// buffered reports that a whole frame, header and body, is in br's
// buffer, so reading it cannot wait on the network. Only a framing whose
// wire size the length header tells (a length header, with or without a
// TPDU the length counts) is recognised; a frame longer than the limit is
// left to the read to refuse.
func (c *Codec) buffered(br bufferedReader) bool {
	var l Length
	switch h := c.header().(type) {
	case Length:
		l = h
	case TPDU:
		l = h.Length
	default:
		return false
	}
	have := br.Buffered()
	if have < l.Size() {
		return false
	}
	b, err := br.Peek(l.Size())
	if err != nil {
		return false
	}
	n, err := l.Decode(b)
	return err == nil && n <= have-l.Size()
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

// WriteMessage packs msg and writes header and body in one write. msg
// must not change until WriteMessage returns (see appendPacked).
func (c *Codec) WriteMessage(w io.Writer, msg *iso8583.Message) error {
	buf, b, err := c.packPooled(message{msg}, c.answerFor(msg))
	if err != nil {
		return err
	}
	defer putBody(buf)
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
	buf, b, err := c.packPooled(message{msg}, c.answerFor(msg))
	if err != nil {
		return nil, err
	}
	defer putBody(buf)
	return append([]byte(nil), b...), nil
}

// packPooled builds the frame of msg behind hdr (nil: a fresh header) in
// a pooled buffer; put buf back once frame is written or copied. On error
// buf is already back.
func (c *Codec) packPooled(msg body, hdr netheader.Message) (buf *[]byte, frame []byte, err error) {
	buf = getBody(0)
	frame, err = c.appendMessage((*buf)[:0], hdr, msg)
	*buf = frame[:0] // keep what it grew to
	if err != nil {
		putBody(buf)
		return nil, nil, err
	}
	return buf, frame, nil
}

// appendMessage appends the frame of msg to dst: hdr (nil: a fresh
// header) and the body, packed as msg.Pack() packs it, within MaxLength.
// A length header is written into room left for it before the body, so
// the frame is built in dst without a copy; any other header is written
// once the body is packed (into a pooled buffer), then the body is copied
// behind it.
func (c *Codec) appendMessage(dst []byte, hdr netheader.Message, msg body) ([]byte, error) {
	l, ok := c.header().(Length)
	if !ok {
		buf := getBody(0)
		defer putBody(buf)
		packed, err := c.appendBody((*buf)[:0], msg)
		*buf = packed[:0]
		if err != nil {
			return dst, err
		}
		return c.appendFrame(dst, hdr, packed)
	}
	start := len(dst)
	out, err := c.appendBody(append(dst, make([]byte, l.Size())...), msg)
	if err != nil {
		return dst[:start], err
	}
	if _, err := l.Append(out[:start], len(out)-start-l.Size()); err != nil {
		return dst[:start], err
	}
	return out, nil
}

// body is a message to pack: an iso8583.Message or Fields.
type body interface {
	appendPacked(dst []byte) ([]byte, error)
}

// message is an iso8583.Message to pack (a pointer in an interface: no
// allocation).
type message struct{ m *iso8583.Message }

func (m message) appendPacked(dst []byte) ([]byte, error) { return appendPacked(dst, m.m) }

// appendBody appends msg, packed within MaxLength, to dst.
func (c *Codec) appendBody(dst []byte, msg body) ([]byte, error) {
	start := len(dst)
	out, err := msg.appendPacked(dst)
	if err != nil {
		return dst[:start], fmt.Errorf("packing message: %w", err)
	}
	if n := len(out) - start; c.MaxLength > 0 && n > c.MaxLength {
		return dst[:start], fmt.Errorf("%w: packed message is %d > %d bytes", ErrTooLong, n, c.MaxLength)
	}
	return out, nil
}

// answerFor is the header Answering registered for msg (nil: none).
func (c *Codec) answerFor(msg *iso8583.Message) netheader.Message {
	if !c.answering.Load() {
		return nil
	}
	v, ok := c.answers.LoadAndDelete(weak.Make(msg))
	if !ok {
		return nil
	}
	return v.(netheader.Message)
}

// appendFrame appends hdr (nil: a fresh header, which carries what the
// switch initiates with) for packed, and packed, to dst.
func (c *Codec) appendFrame(dst []byte, hdr netheader.Message, packed []byte) ([]byte, error) {
	h := c.header()
	if l, ok := h.(Length); ok { // no per-message header state: no allocation
		out, err := l.Append(dst, len(packed))
		if err != nil {
			return dst, err
		}
		return append(out, packed...), nil
	}
	if hdr == nil {
		hdr = h.New()
	}
	return appendFrame(h, hdr, dst, packed)
}

package frame

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/frame/netheader"
)

// ErrWriterFailed is what a Writer returns once a write on its
// connection failed: the byte stream may hold a torn frame, so nothing
// more is written and the connection is closed.
var ErrWriterFailed = errors.New("connection write failed earlier")

// MaxBacklog is how many bytes of frames may wait behind a write in
// progress: past it the peer is taken as no longer reading and the
// connection is closed (the write in progress is bounded by the write
// timeout; this bounds the memory meanwhile).
const MaxBacklog = 4 << 20

// ErrBacklog is a connection closed because its peer stopped reading.
var ErrBacklog = errors.New("peer not reading: frames waiting past the backlog limit")

// Writer writes the messages of many senders to one connection, the
// frames that are ready together in one write: a sender that finds a
// write in progress appends its frame and returns, and the sender doing
// the write writes everything pending before it returns. A lone frame
// leaves at once in its own write (nothing waits on a timer to batch;
// with Gather its sender yields the processor once first).
//
// A sender whose frame was left to another's write gets nil even if that
// write then fails; the failure closes the connection (so its reader
// ends and whatever waits for answers on it learns the link is gone),
// and every later WriteMessage returns the error.
//
// Writer is also an iso8583-connection MessageWriter, so the messages the
// connection library writes itself take the same path.
type Writer struct {
	codec   *Codec
	timeout time.Duration

	mu       sync.Mutex
	dst      io.Writer
	pending  []byte // frames waiting for the next write
	spare    []byte // the buffer of the last write, reused
	flushing bool
	err      error

	writes   atomic.Uint64
	deadline time.Time // the write deadline last set on dst

	// Gather, when set, lets the senders that are ready to run append
	// their frames before a write starts (one yield of the processor, as
	// the journal's committer does): many senders woken together (by one
	// group commit) then share a write instead of a write each. Set it
	// before the first Send; for a connection many senders share (an
	// issuer link), not one that answers one terminal.
	Gather bool
}

// NewWriter writes c's frames to dst (nil: the first WriteMessage of the
// connection library attaches its connection), each write bounded by c's
// WriteTimeout (plus at most an eighth of it: see deadlineSlack) on a
// destination with write deadlines.
func NewWriter(c *Codec, dst io.Writer) *Writer {
	return &Writer{codec: c, timeout: c.WriteTimeout, dst: dst}
}

// Writes is how many writes went to the destination.
func (w *Writer) Writes() uint64 { return w.writes.Load() }

// ErrNotAttached is a write before the writer has a destination.
var ErrNotAttached = errors.New("frame writer has no connection yet")

// Send packs msg and writes its frame, with any others ready. msg must
// not change until Send returns (it is packed without its lock held:
// see appendPacked).
func (w *Writer) Send(msg *iso8583.Message) error {
	return w.send(message{msg}, w.codec.answerFor(msg))
}

// Answer is Send for resp, the answer to a request read with the
// network header received (Codec.TakeHeader): resp's header echoes it
// (a TPDU, destination and source swapped). A nil received is Send.
func (w *Writer) Answer(resp *iso8583.Message, received netheader.Message) error {
	if received == nil {
		return w.Send(resp)
	}
	return w.send(message{resp}, w.codec.answerHeader(received))
}

// AnswerFields is Answer for an answer kept as Fields: packed from its
// fields, no iso8583.Message built.
func (w *Writer) AnswerFields(resp *Fields, received netheader.Message) error {
	return w.send(resp, w.codec.answerHeader(received))
}

func (w *Writer) send(msg body, hdr netheader.Message) error {
	buf, frame, err := w.codec.packPooled(msg, hdr) // outside the lock: senders pack in parallel
	if err != nil {
		return err
	}
	defer putBody(buf)
	w.mu.Lock()
	if w.dst == nil {
		w.mu.Unlock()
		return ErrNotAttached
	}
	return w.enqueueLocked(frame)
}

// WriteMessage is Send for iso8583-connection: dst, the library's
// connection, becomes the destination if the writer has none.
func (w *Writer) WriteMessage(dst io.Writer, msg *iso8583.Message) error {
	buf, frame, err := w.codec.packPooled(message{msg}, w.codec.answerFor(msg))
	if err != nil {
		return err
	}
	defer putBody(buf)
	w.mu.Lock()
	if w.dst == nil {
		w.dst = dst
	}
	return w.enqueueLocked(frame)
}

// enqueueLocked appends frame to what is pending (copying it) and,
// unless a write is in progress, writes what is pending; it unlocks w.mu.
func (w *Writer) enqueueLocked(frame []byte) error {
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.flushing && len(w.pending)+len(frame) > MaxBacklog {
		// The peer stopped reading: give it up rather than buffer without end.
		w.err = fmt.Errorf("%w: %w", ErrWriterFailed, ErrBacklog)
		w.pending = nil
		if c, ok := w.dst.(io.Closer); ok {
			_ = c.Close()
		}
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = append(w.pending, frame...)
	if w.flushing {
		w.mu.Unlock()
		return nil // the write in progress takes it next
	}
	w.flushing = true
	if w.Gather {
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	for len(w.pending) > 0 && w.err == nil {
		batch := w.pending
		w.pending = w.spare[:0]
		dst := w.dst
		w.mu.Unlock()
		err := w.write(dst, batch)
		w.mu.Lock()
		w.spare = batch[:0]
		if err != nil {
			w.err = fmt.Errorf("%w: %w", ErrWriterFailed, err)
			w.pending = nil
			if c, ok := dst.(io.Closer); ok {
				_ = c.Close()
			}
			w.flushing = false
			w.mu.Unlock()
			return fmt.Errorf("writing frame: %w", err)
		}
	}
	w.flushing = false
	w.mu.Unlock()
	return nil
}

// deadlineSlack is the part of the write timeout by which a write
// deadline may outlast it: a deadline set for timeout*(1+1/deadlineSlack)
// serves every write that starts within timeout/deadlineSlack of setting
// it, each of them given at least the timeout, so a busy connection sets
// its write deadline once every timeout/deadlineSlack instead of once a
// write.
const deadlineSlack = 8

// write writes b with a write deadline at least w.timeout away (at most
// w.timeout*(1+1/deadlineSlack)). Only the sender doing the write calls
// it, so w.deadline needs no lock of its own.
func (w *Writer) write(dst io.Writer, b []byte) error {
	if d, ok := dst.(interface{ SetWriteDeadline(time.Time) error }); ok && w.timeout > 0 {
		if now := time.Now(); w.deadline.Sub(now) < w.timeout {
			w.deadline = now.Add(w.timeout + w.timeout/deadlineSlack)
			_ = d.SetWriteDeadline(w.deadline)
		}
	}
	w.writes.Add(1)
	_, err := dst.Write(b)
	return err
}

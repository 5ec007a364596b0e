package upstream

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// wire is one issuer connection's own request path beside
// iso8583-connection, which keeps dialing, TLS, reconnecting, echo and
// read timers, and the issuer's own requests and late answers.
//
// A request is written straight to the socket through a frame.Writer
// (the requests ready together leave in one write) and its answer is
// handed to it by the connection's reader (wire is its MessageReader):
// no goroutine, channel hand-off or timer of the library per request.
//
// This is also what keeps the link from hanging: iso8583-connection
// v0.9.0's Send registers a request in a pending map that its failure
// handler walks, under the map's lock, sending on each entry's
// unbuffered channel. A Send that has just got its answer or timed out
// waits for that lock to remove its entry, and an entry whose Send
// returned before the write loop registered it (a request sent with no
// time left) has no reader at all: the failure handler blocks for ever,
// the Send with it, and the connection never closes or reconnects. Send
// is not used: the library's pending map stays empty, and a wire's
// waiters are each woken once, on a buffered channel, by whoever takes
// them out of the wire's map.
type wire struct {
	out *frame.Writer
	rd  *frame.Codec

	mu      sync.Mutex
	pending map[uint64]*waiter
	gone    bool // the reader ended: no answer can come

	lastRead, lastWrite atomic.Int64 // unix nanoseconds
}

func newWire(codec *frame.Codec) *wire {
	w := &wire{out: frame.NewWriter(codec, nil), rd: codec, pending: map[uint64]*waiter{}}
	w.out.Gather = true // one group commit wakes many senders
	w.lastRead.Store(time.Now().UnixNano())
	return w
}

// wireOf is the wire of a connection the link dialed.
func wireOf(c *connection.Connection) *wire {
	w, _ := c.Opts.MessageReader.(*wire)
	return w
}

// waiter is one request waiting for its answer; waiters are reused. Its
// channel gets exactly one value (nil: the connection ended) from the one
// that removes it from the map, unless the request removes it itself.
type waiter struct {
	ch    chan *iso8583.Message
	timer *time.Timer
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ch: make(chan *iso8583.Message, 1), timer: t}
}}

// ErrNoAnswerKey is a request without the MTI and STAN its answer is
// matched by; it was not sent.
var ErrNoAnswerKey = errors.New("request has no MTI and STAN to match an answer by")

// errDuplicateInFlight is a request whose answer key a request in flight
// on the connection already holds; it was not sent.
var errDuplicateInFlight = errors.New("a request with the same MTI class and STAN is in flight")

// exchange writes req and waits up to timeout for its answer. An error
// from the write may leave the request sent in part or whole.
func (w *wire) exchange(c *connection.Connection, req *iso8583.Message, timeout time.Duration) (*iso8583.Message, error) {
	key, ok := requestKey(req)
	if !ok {
		return nil, ErrNoAnswerKey
	}
	wt := waiters.Get().(*waiter)
	w.mu.Lock()
	switch {
	case w.gone:
		w.mu.Unlock()
		waiters.Put(wt)
		return nil, connection.ErrConnectionClosed
	case w.pending[key] != nil:
		w.mu.Unlock()
		waiters.Put(wt)
		return nil, fmt.Errorf("%w (key %d)", errDuplicateInFlight, key)
	}
	w.pending[key] = wt
	w.mu.Unlock()

	if err := w.write(c, req); err != nil {
		w.abandon(key, wt)
		return nil, err
	}
	wt.timer.Reset(timeout)
	select {
	case resp := <-wt.ch:
		wt.timer.Stop()
		waiters.Put(wt)
		if resp == nil {
			return nil, connection.ErrConnectionClosed
		}
		return resp, nil
	case <-wt.timer.C:
		if w.remove(key, wt) {
			waiters.Put(wt)
			return nil, connection.ErrSendTimeout
		}
		// The reader took the answer as the timer fired: it is on its way.
		resp := <-wt.ch
		waiters.Put(wt)
		if resp == nil {
			return nil, connection.ErrConnectionClosed
		}
		return resp, nil
	}
}

// write sends msg on the connection's socket; before the connection's
// first message (its sign-on) the writer has no socket yet, and the
// library writes it, handing its socket over.
func (w *wire) write(c *connection.Connection, msg *iso8583.Message) error {
	err := w.out.Send(msg)
	if errors.Is(err, frame.ErrNotAttached) {
		err = c.Reply(msg)
	}
	if err == nil {
		w.lastWrite.Store(time.Now().UnixNano())
	}
	return err
}

// remove takes wt out of the map if it is still there.
func (w *wire) remove(key uint64, wt *waiter) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[key] != wt {
		return false
	}
	delete(w.pending, key)
	return true
}

// abandon ends a wait that never started.
func (w *wire) abandon(key uint64, wt *waiter) {
	if !w.remove(key, wt) {
		<-wt.ch // woken meanwhile: drain it before reuse
	}
	waiters.Put(wt)
}

// ReadMessage reads the connection: an answer a request waits for goes
// to it; anything else (the issuer's requests, late answers) to the
// library. A read error ends every wait.
func (w *wire) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	for {
		msg, err := w.rd.ReadMessage(r)
		if err != nil {
			w.fail()
			return nil, err
		}
		w.lastRead.Store(time.Now().UnixNano())
		if key, ok := answerKey(msg); ok {
			w.mu.Lock()
			wt := w.pending[key]
			if wt != nil {
				delete(w.pending, key)
			}
			w.mu.Unlock()
			if wt != nil {
				wt.ch <- msg
				continue
			}
		}
		return msg, nil
	}
}

// fail wakes every waiter: the connection can answer nothing more.
func (w *wire) fail() {
	w.mu.Lock()
	w.gone = true
	woken := make([]*waiter, 0, len(w.pending))
	for key, wt := range w.pending {
		delete(w.pending, key)
		woken = append(woken, wt)
	}
	w.mu.Unlock()
	for _, wt := range woken {
		wt.ch <- nil
	}
}

// idleFor is how long nothing was read.
func (w *wire) idleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - w.lastRead.Load())
}

// wroteWithin reports a request written less than d ago.
func (w *wire) wroteWithin(d time.Duration) bool {
	return time.Duration(time.Now().UnixNano()-w.lastWrite.Load()) < d
}

// requestKey is the key of the answer req expects: its response MTI and
// its STAN as a number (stanRequestID's match, without a string).
func requestKey(req *iso8583.Message) (uint64, bool) {
	mti, err := req.GetMTI()
	if err != nil {
		return 0, false
	}
	if specs.IsRequest(mti) {
		if mti, err = specs.ResponseMTI(mti); err != nil {
			return 0, false
		}
	}
	return messageKey(req, mti)
}

// answerKey is the key of an answer-class message.
func answerKey(msg *iso8583.Message) (uint64, bool) {
	mti, err := msg.GetMTI()
	if err != nil || specs.IsRequest(mti) {
		return 0, false
	}
	return messageKey(msg, mti)
}

func messageKey(m *iso8583.Message, mti string) (uint64, bool) {
	stan, err := m.GetString(specs.STAN)
	if err != nil {
		return 0, false
	}
	mn, ok := digits(mti, 4)
	if !ok {
		return 0, false
	}
	sn, ok := digits(stan, 12)
	if !ok || sn == 0 {
		return 0, false
	}
	return mn*1e12 + sn, true
}

// digits parses 1 to max decimal digits.
func digits(s string, max int) (uint64, bool) {
	if s == "" || len(s) > max {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, true
}

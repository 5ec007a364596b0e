package issuer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/iso/frame"
)

const (
	// replyTimeout bounds one response write when the peer stops reading.
	replyTimeout = 5 * time.Second
	// readLoopGrace is how long a closed connection's read loop may take to
	// notice; iso8583-connection can strand it when the connection closes
	// at the instant it hands over a message.
	readLoopGrace = 2 * time.Second
)

// errUndecodable ends a connection that sent a frame the spec cannot
// unpack: the byte stream can no longer be trusted.
var errUndecodable = errors.New("undecodable frame")

// session is one accepted connection.
type session struct {
	ep       *endpoint // the endpoint it came in on
	id       uint64
	remote   string
	conn     net.Conn
	link     atomic.Pointer[connection.Connection] // set once the connection is built (ChangeKey sends on it)
	signedOn atomic.Bool

	readerDone chan struct{} // closed when the read loop got its last error
	readerOnce sync.Once

	// garbage maps a response about to be written to the frame sent in
	// its place (Fault.GarbagePercent). An entry whose Reply never got
	// written goes with the session.
	garbage sync.Map // *iso8583.Message -> []byte
}

func (s *session) readerExited() { s.readerOnce.Do(func() { close(s.readerDone) }) }

// serve registers an accepted connection and starts its supervisor.
func (is *Issuer) serve(conn net.Conn, ep *endpoint) {
	is.mu.Lock()
	if is.closing || ep.down.Load() {
		is.mu.Unlock()
		conn.Close()
		return
	}
	is.nextID++
	s := &session{ep: ep, id: is.nextID, remote: conn.RemoteAddr().String(), conn: conn, readerDone: make(chan struct{})}
	is.sessions[s] = struct{}{}
	is.loops.Add(1)
	is.mu.Unlock()
	go is.run(s)
}

// run wraps the socket in an iso8583-connection and waits until both the
// connection and its read loop have ended.
func (is *Issuer) run(s *session) {
	defer is.loops.Done()
	defer func() {
		is.mu.Lock()
		delete(is.sessions, s)
		is.mu.Unlock()
	}()
	log := is.log.With(zap.Uint64("conn", s.id), zap.String("remote", s.remote))
	codec := &frame.Codec{Header: is.header, Spec: is.spec}
	c, err := connection.NewFrom(s.conn, is.spec, nil, nil,
		connection.SetMessageReader(&sessionReader{codec: codec, s: s, is: is, log: log}),
		connection.SetMessageWriter(&sessionWriter{codec: codec, s: s}),
		connection.SendTimeout(replyTimeout),
		connection.InboundMessageHandler(func(c *connection.Connection, req *iso8583.Message) {
			is.handleInbound(c, codec, req, s, log)
		}),
	)
	if err != nil {
		log.Error("cannot serve connection", zap.Error(err))
		s.conn.Close()
		return
	}
	s.link.Store(c)
	log.Info("connection accepted")
	<-c.Done()
	t := time.NewTimer(readLoopGrace)
	select {
	case <-s.readerDone:
		t.Stop()
	case <-t.C:
		log.Warn("read loop did not end after the connection closed")
	}
	log.Info("connection closed", zap.Bool("signed_on", s.signedOn.Load()))
}

// handleInbound is the connection's InboundMessageHandler: it runs in its
// own goroutine per message, so requests on one link are served
// concurrently.
//
// codec is the connection's: an answer echoes the network header its
// request came with (a TPDU, swapped).
func (is *Issuer) handleInbound(c *connection.Connection, codec *frame.Codec, req *iso8583.Message, s *session, log *zap.Logger) {
	if s.ep.silent.Load() { // endpoints.go: read, neither applied nor answered
		return
	}
	if !is.enterHandler() {
		return
	}
	defer is.handlers.Done()
	defer func() {
		if r := recover(); r != nil {
			log.Error("request handler panicked", zap.Any("panic", r))
		}
	}()
	r := is.process(req, s)
	if r.disconnect {
		// Fault.Disconnect: the request has been applied; the answer is
		// never sent.
		log.Info("fault: closing the connection instead of answering")
		s.conn.Close()
		return
	}
	resp := r.resp
	if resp == nil {
		return
	}
	if d := r.delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-is.stop:
			t.Stop()
			return
		}
	}
	if r.garbage != nil {
		// Fault.GarbagePercent: the writer sends the random bytes in
		// place of resp; Reply keeps its send timeout, so Close never
		// waits on a peer that stopped reading.
		s.garbage.Store(resp, r.garbage)
	}
	codec.Answering(resp, codec.TakeHeader(req))
	if err := c.Reply(resp); err != nil {
		mti, _ := resp.GetMTI()
		stan, _ := resp.GetString(11)
		log.Warn("cannot send response", zap.String("mti", mti), zap.String("stan", stan), zap.Error(err))
	}
}

// sessionReader reads frames with the codec and ends the connection on an
// undecodable frame (iso8583-connection would otherwise skip unpack errors
// and go on reading).
type sessionReader struct {
	codec *frame.Codec
	s     *session
	is    *Issuer
	log   *zap.Logger
}

func (r *sessionReader) ReadMessage(rd io.Reader) (*iso8583.Message, error) {
	msg, err := r.codec.ReadMessage(rd)
	if err == nil {
		return msg, nil
	}
	defer r.s.readerExited()
	var ue *frame.UndecodableError
	switch {
	case errors.As(err, &ue):
		r.log.Warn("undecodable frame: closing connection", zap.String("mti", ue.MTI), zap.Error(ue.Err))
		// Deliberately not wrapping: the read loop must not see an unpack
		// error it would skip.
		return nil, fmt.Errorf("%w: %s", errUndecodable, ue.Error())
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || r.is.isClosing():
		r.log.Debug("connection read ended", zap.Error(err))
	default:
		r.log.Warn("reading frame: closing connection", zap.Error(err))
	}
	return nil, err
}

// sessionWriter writes responses with the codec, or instead the garbage
// frame registered for one.
type sessionWriter struct {
	codec *frame.Codec
	s     *session
}

func (w *sessionWriter) WriteMessage(wr io.Writer, msg *iso8583.Message) error {
	b, ok := w.s.garbage.LoadAndDelete(msg)
	if !ok {
		return w.codec.WriteMessage(wr, msg)
	}
	if _, err := wr.Write(b.([]byte)); err != nil {
		return fmt.Errorf("writing garbage frame: %w", err)
	}
	return nil
}

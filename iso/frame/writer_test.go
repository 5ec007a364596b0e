package frame

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

func terminalMessage(t testing.TB, c *Codec, stan string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(c.Spec)
	m.MTI("0210")
	for id, v := range map[int]string{specs.STAN: stan, specs.TerminalID: "TERM0001", specs.ResponseCode: "00"} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// gatedConn records each write and holds the first until released.
type gatedConn struct {
	mu     sync.Mutex
	writes [][]byte
	gate   chan struct{}
	inside chan struct{}
	err    error
	closed bool
}

func (g *gatedConn) Write(b []byte) (int, error) {
	g.mu.Lock()
	first := len(g.writes) == 0
	g.writes = append(g.writes, append([]byte(nil), b...))
	g.mu.Unlock()
	if first && g.gate != nil {
		close(g.inside)
		<-g.gate
	}
	if g.err != nil {
		return 0, g.err
	}
	return len(b), nil
}

func (g *gatedConn) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return nil
}

// TestWriterLoneFrameLeavesAtOnce: one frame, one write, before Send
// returns (no batching delay).
func TestWriterLoneFrameLeavesAtOnce(t *testing.T) {
	c := terminalCodec(t)
	dst := &gatedConn{}
	w := NewWriter(c, dst)
	if err := w.Send(terminalMessage(t, c, "000001")); err != nil {
		t.Fatal(err)
	}
	if len(dst.writes) != 1 || w.Writes() != 1 {
		t.Fatalf("%d writes, want 1", len(dst.writes))
	}
	got, err := c.ReadMessage(bufio.NewReader(bytes.NewReader(dst.writes[0])))
	if err != nil {
		t.Fatal(err)
	}
	if stan, _ := got.GetString(specs.STAN); stan != "000001" {
		t.Fatalf("STAN %q", stan)
	}
}

// TestWriterCoalescesFramesReadyTogether: frames sent while a write is in
// progress leave together in the next write, in order, and their senders
// do not wait for it.
func TestWriterCoalescesFramesReadyTogether(t *testing.T) {
	c := terminalCodec(t)
	dst := &gatedConn{gate: make(chan struct{}), inside: make(chan struct{})}
	w := NewWriter(c, dst)
	first := make(chan error, 1)
	go func() { first <- w.Send(terminalMessage(t, c, "000001")) }()
	<-dst.inside // the first write is on the wire and held there
	const queued = 10
	for i := range queued {
		if err := w.Send(terminalMessage(t, c, fmt.Sprintf("%06d", i+2))); err != nil {
			t.Fatal(err)
		}
	}
	close(dst.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if len(dst.writes) != 2 {
		t.Fatalf("%d writes, want 2 (the held one, then the %d queued together)", len(dst.writes), queued)
	}
	r := bufio.NewReader(bytes.NewReader(bytes.Join(dst.writes, nil)))
	for i := range queued + 1 {
		m, err := c.ReadMessage(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if stan, _ := m.GetString(specs.STAN); stan != fmt.Sprintf("%06d", i+1) {
			t.Fatalf("frame %d has STAN %s: out of order", i, stan)
		}
	}
	if _, err := c.ReadMessage(r); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v", err)
	}
}

// TestWriterFailureClosesAndSticks: a failed write closes the connection
// (a torn frame may be on it) and every later send fails.
func TestWriterFailureClosesAndSticks(t *testing.T) {
	c := terminalCodec(t)
	dst := &gatedConn{err: errors.New("broken pipe")}
	w := NewWriter(c, dst)
	if err := w.Send(terminalMessage(t, c, "000001")); err == nil {
		t.Fatal("a failed write reported success")
	}
	if !dst.closed {
		t.Fatal("connection left open after a failed write")
	}
	if err := w.Send(terminalMessage(t, c, "000002")); !errors.Is(err, ErrWriterFailed) {
		t.Fatalf("after the failure: err = %v, want ErrWriterFailed", err)
	}
}

// TestWriterGivesUpAPeerThatStopsReading: frames piling up behind a
// write that does not complete close the connection past MaxBacklog
// instead of growing without end.
func TestWriterGivesUpAPeerThatStopsReading(t *testing.T) {
	c := terminalCodec(t)
	dst := &gatedConn{gate: make(chan struct{}), inside: make(chan struct{})}
	w := NewWriter(c, dst)
	first := make(chan error, 1)
	go func() { first <- w.Send(terminalMessage(t, c, "000001")) }()
	<-dst.inside
	var err error
	for i := 0; err == nil; i++ {
		if i > 2*MaxBacklog/10 {
			t.Fatal("backlog never refused")
		}
		err = w.Send(terminalMessage(t, c, "000002"))
	}
	if !errors.Is(err, ErrBacklog) {
		t.Fatalf("err = %v, want ErrBacklog", err)
	}
	dst.mu.Lock()
	closed := dst.closed
	dst.mu.Unlock()
	if !closed {
		t.Fatal("connection of a peer that stopped reading left open")
	}
	close(dst.gate)
	<-first
}

// TestWriterAttachesLibraryConnection: without a destination Send
// refuses; the library's first WriteMessage attaches its connection.
func TestWriterAttachesLibraryConnection(t *testing.T) {
	c := terminalCodec(t)
	w := NewWriter(c, nil)
	if err := w.Send(terminalMessage(t, c, "000001")); !errors.Is(err, ErrNotAttached) {
		t.Fatalf("err = %v, want ErrNotAttached", err)
	}
	dst := &gatedConn{}
	if err := w.WriteMessage(dst, terminalMessage(t, c, "000002")); err != nil {
		t.Fatal(err)
	}
	if err := w.Send(terminalMessage(t, c, "000003")); err != nil || len(dst.writes) != 2 {
		t.Fatalf("after attaching: err = %v, %d writes", err, len(dst.writes))
	}
}

// TestPooledBodiesDoNotAlias: a message read earlier keeps its fields
// when later frames reuse its body buffer.
func TestPooledBodiesDoNotAlias(t *testing.T) {
	c := terminalCodec(t)
	var stream bytes.Buffer
	for i := range 50 {
		if err := c.WriteMessage(&stream, terminalMessage(t, c, fmt.Sprintf("%06d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&stream)
	var msgs []*iso8583.Message
	for range 50 {
		m, err := c.ReadMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	for i, m := range msgs {
		if stan, _ := m.GetString(specs.STAN); stan != fmt.Sprintf("%06d", i+1) {
			t.Fatalf("message %d now has STAN %s: its body buffer was reused under it", i, stan)
		}
		if tid, _ := m.GetString(specs.TerminalID); tid != "TERM0001" {
			t.Fatalf("message %d now has terminal %q", i, tid)
		}
	}
}

// BenchmarkCodecRead reads and unpacks frames from a buffered stream.
func BenchmarkCodecRead(b *testing.B) {
	c := terminalCodec(b)
	var one bytes.Buffer
	if err := c.WriteMessage(&one, terminalMessage(b, c, "000001")); err != nil {
		b.Fatal(err)
	}
	benchRead(b, c, one.Bytes())
}

// benchRead reads and unpacks frame (one framed message) with c, over
// and over, from a buffered stream of 1,024 copies.
func benchRead(b *testing.B, c *Codec, frame []byte) {
	stream := bytes.Repeat(frame, 1024)
	b.ReportAllocs()
	r := bufio.NewReader(bytes.NewReader(stream))
	for i := 0; b.Loop(); i++ {
		if i%1024 == 0 {
			r.Reset(bytes.NewReader(stream))
		}
		if _, err := c.ReadMessage(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecWrite packs and writes one frame per message.
func BenchmarkCodecWrite(b *testing.B) {
	c := terminalCodec(b)
	m := terminalMessage(b, c, "000001")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteMessage(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterLoopback sends answers from 64 goroutines on one
// loopback TCP connection through a Writer (coalesced) or the codec
// under a mutex (one write per frame, as iso8583-connection's write loop
// does), reporting write syscalls per frame.
func BenchmarkWriterLoopback(b *testing.B) {
	for _, mode := range []string{"per-frame", "coalesced"} {
		b.Run(mode, func(b *testing.B) {
			c := terminalCodec(b)
			client, server := tcpPair(b)
			go func() { _, _ = io.Copy(io.Discard, server) }()
			counted := &countingConn{Conn: client}
			w := NewWriter(c, counted)
			var mu sync.Mutex
			send := func(m *iso8583.Message) error {
				if mode == "coalesced" {
					return w.Send(m)
				}
				mu.Lock()
				defer mu.Unlock()
				return c.WriteMessage(counted, m)
			}
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				m := terminalMessage(b, c, "000001")
				for pb.Next() {
					if err := send(m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(counted.writes)/float64(b.N), "writes/frame")
		})
	}
}

type countingConn struct {
	net.Conn
	writes int64 // under the writer's serialization
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes++
	return c.Conn.Write(b)
}

func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	server := <-accepted
	b.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

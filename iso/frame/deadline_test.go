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

// deadlineRecorder records the deadlines set on it and the writes made
// through it, with the deadline in force at each write.
type deadlineRecorder struct {
	mu        sync.Mutex
	reads     []time.Time
	writes    []time.Time
	atWrite   []time.Duration // deadline minus the time of each write
	writeDead time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads = append(d.reads, t)
	return nil
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, t)
	d.writeDead = t
	return nil
}

func (d *deadlineRecorder) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.atWrite = append(d.atWrite, time.Until(d.writeDead))
	return len(b), nil
}

func framedStream(t testing.TB, c *Codec, n int) []byte {
	t.Helper()
	var stream bytes.Buffer
	for i := range n {
		m := iso8583.NewMessage(c.Spec)
		m.MTI("0200")
		_ = m.Field(specs.STAN, fmt.Sprintf("%06d", i+1))
		_ = m.Field(specs.TerminalID, "TERM0001")
		b, err := c.Pack(m)
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(b)
	}
	return stream.Bytes()
}

// TestBufferedFramesSetNoReadDeadline: a frame that arrived whole with
// the read that brought its first byte cannot be slow, so reading it
// sets (and clears) no frame deadline: one read of many frames costs no
// deadline call at all.
func TestBufferedFramesSetNoReadDeadline(t *testing.T) {
	for _, h := range framings {
		t.Run(h.String(), func(t *testing.T) {
			conn := &deadlineRecorder{}
			c := terminalCodec(t)
			c.Header, c.Conn, c.FrameTimeout = h, conn, time.Minute
			const frames = 5
			r := bufio.NewReader(bytes.NewReader(framedStream(t, c, frames)))
			for i := range frames {
				if _, err := c.ReadMessage(r); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			if len(conn.reads) != 0 {
				t.Fatalf("%d read deadline calls for %d buffered frames, want 0", len(conn.reads), frames)
			}
		})
	}
}

// TestPartFrameIsStillTimed: a frame that stops arriving part-way (in
// its length header, its TPDU or its body) is still cut off by the frame
// timeout, whatever is buffered already.
func TestPartFrameIsStillTimed(t *testing.T) {
	for _, h := range framings {
		c := terminalCodec(t)
		c.Header = h
		whole := framedStream(t, c, 1)
		// Cut in the length header, just after it (in the TPDU if any), in
		// the body, one byte short.
		for _, cut := range []int{1, 5, len(whole) / 2, len(whole) - 1} {
			t.Run(fmt.Sprintf("%s/%d of %d bytes", h, cut, len(whole)), func(t *testing.T) {
				t.Parallel()
				client, server := net.Pipe()
				defer client.Close()
				defer server.Close()
				c := terminalCodec(t)
				c.Header, c.Conn, c.FrameTimeout = h, server, 200*time.Millisecond
				go func() { _, _ = client.Write(whole[:cut]) }()
				done := make(chan error, 1)
				go func() {
					_, err := c.ReadMessage(bufio.NewReader(server))
					done <- err
				}()
				select {
				case err := <-done:
					if !errors.Is(err, ErrSlowFrame) {
						t.Fatalf("first %d of %d bytes, then nothing: err = %v, want ErrSlowFrame", cut, len(whole), err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("first %d of %d bytes, then nothing: the frame was never cut off", cut, len(whole))
				}
			})
		}
	}
}

// TestWriterSetsItsWriteDeadlineRarely: a busy connection's writes share
// a write deadline instead of setting one each, and every write still
// has at least the write timeout before its deadline.
func TestWriterSetsItsWriteDeadlineRarely(t *testing.T) {
	c := terminalCodec(t)
	c.WriteTimeout = time.Minute
	dst := &deadlineRecorder{}
	w := NewWriter(c, dst)
	const sends = 100
	for i := range sends {
		if err := w.Send(terminalMessage(t, c, "000001")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if len(dst.writes) != 1 {
		t.Fatalf("%d write deadline calls for %d writes, want 1", len(dst.writes), sends)
	}
	for i, left := range dst.atWrite {
		if left < c.WriteTimeout-time.Second || left > c.WriteTimeout+c.WriteTimeout/deadlineSlack {
			t.Fatalf("write %d had %v before its deadline, want about %v", i, left, c.WriteTimeout)
		}
	}
}

// FuzzFrameTimedRead: over any byte stream and framing, a frame read
// without a frame deadline never needed a byte more than was buffered
// (a short stream here stands for a network that has nothing more yet),
// and frame-timed reading reads the same frames and fails the same way
// as plain reading.
func FuzzFrameTimedRead(f *testing.F) {
	c := terminalCodec(f)
	for i := range framings {
		c.Header = framings[i]
		whole := framedStream(f, c, 2)
		f.Add(whole, uint8(i), uint16(4096))
		f.Add(whole[:len(whole)-3], uint8(i), uint16(16))
	}
	f.Fuzz(func(t *testing.T, stream []byte, framing uint8, size uint16) {
		h := framings[int(framing)%len(framings)]
		conn := &deadlineRecorder{}
		timed := &Codec{Header: h, MaxLength: 512, Conn: conn, FrameTimeout: time.Minute}
		plain := &Codec{Header: h, MaxLength: 512}
		tr := bufio.NewReaderSize(bytes.NewReader(stream), int(size))
		pr := bufio.NewReaderSize(bytes.NewReader(stream), int(size))
		for {
			before := len(conn.reads)
			_, got, terr := timed.readFrame(tr)
			_, want, perr := plain.readFrame(pr)
			switch {
			case (terr == nil) != (perr == nil):
				t.Fatalf("timed read: %v, plain read: %v", terr, perr)
			case terr == nil && !bytes.Equal(*got, *want):
				t.Fatalf("timed read %x, plain read %x", *got, *want)
			case len(conn.reads) == before && errors.Is(terr, io.ErrUnexpectedEOF):
				t.Fatalf("frame read without a deadline ran out of buffered bytes: %v", terr)
			}
			if terr != nil {
				return
			}
		}
	})
}

// BenchmarkFrameTimedRead reads frames the way a terminal connection
// does (frame timeout on, a loopback socket to set deadlines on) from a
// buffered stream; BenchmarkWriterTimedSend writes lone frames with a
// write timeout on a loopback socket. Together: the deadline work of one
// terminal request and its answer.
func BenchmarkFrameTimedRead(b *testing.B) {
	c := terminalCodec(b)
	client, _ := tcpPair(b)
	c.Conn, c.FrameTimeout = client, time.Minute
	benchRead(b, c, framedStream(b, c, 1))
}

func BenchmarkWriterTimedSend(b *testing.B) {
	c := terminalCodec(b)
	c.WriteTimeout = time.Minute
	client, server := tcpPair(b)
	go func() { _, _ = io.Copy(io.Discard, server) }()
	w := NewWriter(c, client)
	m := terminalMessage(b, c, "000001")
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Send(m); err != nil {
			b.Fatal(err)
		}
	}
}

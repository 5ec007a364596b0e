package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// BenchmarkLinkRoundTrip sends approvals on one issuer link to a
// loopback issuer that answers at once, from 16 or 64 requests in
// flight. Besides ns/op and allocs/op it reports write syscalls per round
// trip: wsys/op for the whole process (read from /proc/self/io, so the
// issuer's writes and the runtime's own are in it), issuer-writes/op,
// the issuer's part (it writes the answers it has ready together), and
// link-writes/op, the link's own socket writes.
func BenchmarkLinkRoundTrip(b *testing.B) {
	for _, inFlight := range []int{16, 64} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			spec := specs.MustLoad(specs.IssuerDialect)
			addr, issuerWrites := loopbackIssuer(b, spec)
			l := newLink(b, addr, func(rc *config.IssuerRoute) {
				rc.Header, rc.Timeout, rc.Breaker.Failures = "binary2", 10*time.Second, 1<<20
			})
			waitFor(b, "sign-on", func() bool { return l.Up() == 1 })
			reqs := make([]*iso8583.Message, inFlight)
			for i := range reqs {
				reqs[i] = sale(b, l, "000000001000")
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			sys0, w0, l0 := writeSyscalls(b), issuerWrites.Load(), linkWrites(l)
			for w := range inFlight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						req := reqs[w]
						req.UnsetField(specs.STAN)
						req.UnsetField(specs.RRN)
						if _, err := l.Exchange(context.Background(), req); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(writeSyscalls(b)-sys0)/float64(b.N), "wsys/op")
			b.ReportMetric(float64(issuerWrites.Load()-w0)/float64(b.N), "issuer-writes/op")
			b.ReportMetric(float64(linkWrites(l)-l0)/float64(b.N), "link-writes/op")
		})
	}
}

// linkWrites counts the writes of the link's connections (each frame
// writer counts the writes it makes).
func linkWrites(l *Link) uint64 {
	var n uint64
	for _, e := range *l.eps.Load() {
		for _, c := range e.pool().Connections() {
			if w := wireOf(c); w != nil {
				n += w.out.Writes()
			}
		}
	}
	return n
}

// writeSyscalls is the process's count of write system calls so far.
func writeSyscalls(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skipf("no /proc/self/io: %v", err)
	}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	b.Skip("no syscw in /proc/self/io")
	return 0
}

// loopbackIssuer approves every request on each connection at once,
// writing the answers it has ready in one write; writes counts them.
func loopbackIssuer(b *testing.B, spec *iso8583.MessageSpec) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var writes atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				codec := &frame.Codec{Header: frame.Binary2, Spec: spec}
				br, bw := bufio.NewReader(nc), bufio.NewWriter(nc)
				for {
					req, err := codec.ReadMessage(br)
					if err != nil {
						return
					}
					mti, _ := req.GetMTI()
					rmti, _ := specs.ResponseMTI(mti)
					out, err := codec.Pack(isotest.Answer(spec, req, rmti, "00"))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = bw.Write(out)
					if br.Buffered() == 0 {
						writes.Add(1)
						if bw.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &writes
}

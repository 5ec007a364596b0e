package payswitch_test

import (
	"context"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

// The round-trip benchmarks send approvals from 32 concurrent terminals on
// one connection over loopback through three paths, so their ratio shows
// what the switch itself costs:
//   - Direct: terminal -> issuer emulator (in the terminal dialect);
//   - RawRelay: terminal -> a byte-copying TCP relay -> the same issuer;
//   - Switch: terminal -> switchd (validate, journal durably before sending
//     and before answering, route, map dialects, own STAN/RRN) -> issuer
//     emulator in the issuer dialect;
//   - SwitchJournalNoFsync: the same with the journal not fsync'd, so the
//     difference is what durability costs.
// Each reports ns/op (throughput) and the p50/p99 round trip.

func benchIssuer(b *testing.B, spec, header string) *issuer.Issuer {
	is := issuertest.Start(b, issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"},
		DefaultBalance: 1 << 60, Spec: spec, Header: header})
	return is
}

// relay copies bytes both ways between each accepted connection and target.
func relay(b *testing.B, target string) string {
	return testnet.Serve(b, testnet.Listen(b), func(c net.Conn) {
		u, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer u.Close()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		_, _ = io.Copy(c, u)
	}).Addr()
}

func benchSwitch(b *testing.B, issuerAddr string, durable bool) string {
	cfg := testConfig(b)
	cfg.Journal.Durable = &durable
	// One terminal ID sends everything: no per-terminal rate limit here.
	cfg.Listeners = []config.Listener{{Name: "terminal", Addr: "127.0.0.1:0", RatePerTerminal: -1}}
	cfg.Routes = []config.IssuerRoute{{Name: "card-a", BINs: []string{"9410"}, Addrs: []string{issuerAddr}}}
	cfg, err := config.Parse(mustYAMLB(b, cfg))
	if err != nil {
		b.Fatal(err)
	}
	sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sw.Shutdown(context.Background()) })
	// Wait for the issuer link's sign-on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _ := terminal.Dial(context.Background(), terminal.Options{Addr: sw.ListenerAddr("terminal"), Timeout: time.Second})
		if c != nil {
			res, err := c.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 1})
			_ = c.Close()
			if err == nil && res.ResponseCode == "00" {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("switch not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sw.ListenerAddr("terminal")
}

func roundTrips(b *testing.B, addr string) {
	c, err := terminal.Dial(context.Background(), terminal.Options{Addr: addr, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const workers = 32
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{}, workers)
	go func() {
		for i := 0; i < b.N; i++ {
			next <- struct{}{}
		}
		close(next)
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				res, err := c.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 1})
				if err != nil || res.ResponseCode != "00" {
					b.Errorf("purchase: %v %s", err, res.ResponseCode)
					return
				}
				mu.Lock()
				lat = append(lat, res.Latency)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	b.Run("Direct", func(b *testing.B) {
		is := benchIssuer(b, specs.TerminalDialect, "binary2")
		roundTrips(b, is.Addr())
	})
	b.Run("RawRelay", func(b *testing.B) {
		is := benchIssuer(b, specs.TerminalDialect, "binary2")
		roundTrips(b, relay(b, is.Addr()))
	})
	b.Run("Switch", func(b *testing.B) {
		is := benchIssuer(b, specs.IssuerDialect, "ascii4")
		roundTrips(b, benchSwitch(b, is.Addr(), true))
	})
	b.Run("SwitchJournalNoFsync", func(b *testing.B) {
		is := benchIssuer(b, specs.IssuerDialect, "ascii4")
		roundTrips(b, benchSwitch(b, is.Addr(), false))
	})
}

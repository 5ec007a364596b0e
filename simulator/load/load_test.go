package load

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/testnet"
)

func ms2d(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// run is Run with the test's defaults: loopback synthetic server, fixed seed.
func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// A server that answers after exactly 2 ms must be measured at about 2 ms:
// never less (the server's delay is a floor), and at most a few ms more
// (scheduler and loopback noise on a shared 2-core machine, with -race).
func TestAccuracyFixedDelay(t *testing.T) {
	const delay = 2 * time.Millisecond
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"open uniform VAN", Config{Rate: 200, Duration: 1500 * time.Millisecond, Terminals: 2}},
		{"open poisson POS", Config{Rate: 200, Arrivals: Poisson, Duration: 1500 * time.Millisecond, Terminals: 4, OneOutstanding: true}},
		{"closed", Config{Closed: 2, Duration: 1 * time.Second, Terminals: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSynth(t, delay)
			tc.cfg.Addr = s.addr
			rep := run(t, tc.cfg)
			l := rep.Latency
			t.Logf("server hold p50 %s; measured min %.3fms p50 %.3fms p99 %.3fms max %.3fms; generator lag %+v; sent %d answered %d",
				s.holdP50(), l.Min, l.P50, l.P99, l.Max, rep.GeneratorLag, rep.Sent, rep.Answered)
			if rep.Answered == 0 || rep.Answered != rep.Sent || rep.Timeouts != 0 || rep.Errors.Total != 0 {
				t.Fatalf("sent %d answered %d timeouts %d errors %+v", rep.Sent, rep.Answered, rep.Timeouts, rep.Errors)
			}
			if ms2d(l.Min) < delay {
				t.Errorf("min latency %.3fms is below the server's fixed %s delay: the measurement is wrong", l.Min, delay)
			}
			// Open loop measures from the intended send time, so the
			// generator's own lag (reported, and measured per request) is
			// part of every latency: a starved machine may add it, the
			// client's measurement may add no more than 3 ms on top.
			var lag time.Duration
			if rep.GeneratorLag != nil {
				lag = ms2d(rep.GeneratorLag.P90)
			}
			if p50 := ms2d(l.P50); p50 < delay || p50 > 6*time.Millisecond+lag {
				t.Errorf("p50 %.3fms, want within [2ms, 6ms + generator lag p90 %s] for a fixed 2ms server", l.P50, lag)
			}
			// The client adds little to what the server actually held.
			if diff := ms2d(l.P50) - s.holdP50(); diff > 3*time.Millisecond+lag {
				t.Errorf("p50 %.3fms is %s above the server's actual hold p50 %s (generator lag p90 %s)", l.P50, diff, s.holdP50(), lag)
			}
			if tc.cfg.Rate > 0 {
				want := tc.cfg.Rate * tc.cfg.Duration.Seconds()
				if float64(rep.Sent) < 0.7*want || float64(rep.Sent) > 1.3*want {
					t.Errorf("sent %d, want about %.0f at %g/s for %s", rep.Sent, want, tc.cfg.Rate, tc.cfg.Duration)
				}
			}
		})
	}
}

// A 200 ms stall during an open-loop run must show in the percentiles:
// every request due during the stall waits for it, and open-loop latency
// counts from when it was due. A closed loop with one request in flight
// sends nothing during the stall, so only one of its requests sees it:
// its p99 stays low while its max shows the stall (coordinated omission).
func TestAccuracyStallIsNotHidden(t *testing.T) {
	const stall = 200 * time.Millisecond
	runStalled := func(t *testing.T, cfg Config) *Report {
		s := startSynth(t, 2*time.Millisecond)
		cfg.Addr = s.addr
		timer := time.AfterFunc(time.Second, func() { s.stall(stall) })
		defer timer.Stop()
		rep := run(t, cfg)
		l := rep.Latency
		t.Logf("sent %d answered %d: p50 %.2fms p90 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms",
			rep.Sent, rep.Answered, l.P50, l.P90, l.P99, l.P999, l.Max)
		if rep.Timeouts != 0 || rep.Errors.Total != 0 || rep.Unsent != 0 {
			t.Fatalf("timeouts %d errors %+v unsent %d", rep.Timeouts, rep.Errors, rep.Unsent)
		}
		return rep
	}
	var openP99 float64
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"open VAN", Config{Rate: 200, Duration: 2 * time.Second, Terminals: 2}},
		// POS terminals: arrivals that find every terminal busy wait in the
		// generator, and that wait counts.
		{"open POS", Config{Rate: 200, Duration: 2 * time.Second, Terminals: 2, OneOutstanding: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := runStalled(t, tc.cfg)
			l := rep.Latency
			if l.P99 < 150 || l.Max < 150 {
				t.Errorf("p99 %.1fms max %.1fms: a 200ms stall at 200/s (~40 of ~400 requests due in it) must put p99 and max >= 150ms", l.P99, l.Max)
			}
			if l.P999 < 150 {
				t.Errorf("p99.9 %.1fms: the requests due at the start of the stall waited ~200ms", l.P999)
			}
			// Half the stall: well clear of what a busy CI machine adds to
			// requests the stall did not touch, well below the stall.
			// The generator's own lag (a starved machine) is in every
			// open-loop latency: it is allowed on top.
			var lag float64
			if rep.GeneratorLag != nil {
				lag = rep.GeneratorLag.P50
			}
			if l.P50 > float64(stall/time.Millisecond)/2+lag {
				t.Errorf("p50 %.1fms (generator lag p50 %.1fms): most requests were not affected by the stall", l.P50, lag)
			}
			openP99 = max(openP99, l.P99)
		})
	}
	t.Run("closed", func(t *testing.T) {
		rep := runStalled(t, Config{Closed: 1, Duration: 2 * time.Second, Terminals: 1})
		l := rep.Latency
		if l.Max < 150 {
			t.Errorf("max %.1fms: the one request caught in the stall must show it", l.Max)
		}
		if l.P99 > 50 {
			t.Errorf("closed-loop p99 %.1fms: expected the stall to hide below p99 (coordinated omission)", l.P99)
		}
		if openP99 > 0 && l.P99 >= openP99/2 {
			t.Errorf("closed p99 %.1fms vs open p99 %.1fms: expected the open loop to show the stall far more", l.P99, openP99)
		}
	})
}

// Cancels and refunds name only approved, not yet given back sales of
// their own terminal; declined sales are never cancelled.
func TestMixBookkeeping(t *testing.T) {
	s := startSynth(t, 500*time.Microsecond)
	s.decline = func(amount int64) bool { return amount%5 == 0 }
	rep := run(t, Config{Addr: s.addr, Rate: 400, Duration: 1500 * time.Millisecond, Terminals: 3,
		Mix: Mix{Purchase: 60, Cancel: 25, Refund: 15}})
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.violations {
		if i == 10 {
			t.Errorf("... %d more", len(s.violations)-10)
			break
		}
		t.Errorf("server saw: %s", v)
	}
	c, r, p := rep.ByType["cancel"], rep.ByType["refund"], rep.ByType["purchase"]
	t.Logf("purchase %+v cancel %+v refund %+v fallbacks %d server: cancels %d refunds %d mtis %v",
		p, c, r, rep.MixFallbacks, s.cancels, s.refunds, s.mtis)
	if c.Sent == 0 || r.Sent == 0 {
		t.Fatalf("no cancels (%d) or refunds (%d) sent", c.Sent, r.Sent)
	}
	if int64(s.cancels) != c.Approved || int64(s.refunds) != r.Approved {
		t.Errorf("server accepted %d cancels and %d refunds; report says %d and %d approved", s.cancels, s.refunds, c.Approved, r.Approved)
	}
	if p.Sent+c.Sent+r.Sent != rep.Sent || int64(s.mtis["0400"]) != c.Sent || int64(s.mtis["0200"]) != p.Sent+r.Sent {
		t.Errorf("counts disagree: report sent %d (%d+%d+%d), server got %v", rep.Sent, p.Sent, c.Sent, r.Sent, s.mtis)
	}
	if p.Approved == p.Answered {
		t.Error("no purchase was declined: the test proves nothing about declined sales")
	}
	var declined int64
	for _, cc := range rep.ResponseCodes {
		if cc.Code == "51" {
			declined = cc.Count
		}
	}
	if declined != p.Answered-p.Approved {
		t.Errorf("51s in the code breakdown %d, declined purchases %d", declined, p.Answered-p.Approved)
	}
}

// A purchase that times out gets a net cancel naming it, on its terminal.
func TestTimeoutSendsNetCancel(t *testing.T) {
	s := startSynth(t, time.Millisecond)
	s.drop = func(amount int64) bool { return amount%10 == 0 }
	rep := run(t, Config{Addr: s.addr, Rate: 100, Duration: time.Second, Terminals: 2, Timeout: 200 * time.Millisecond})
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("timeouts %d net cancels %+v; server: net cancels %d, still unreversed %d, violations %v",
		rep.Timeouts, rep.NetCancels, s.netCancels, len(s.dropped), s.violations)
	if rep.Timeouts == 0 {
		t.Fatal("no timeouts: the test proves nothing")
	}
	if rep.ByType["purchase"].Timeouts != rep.Timeouts || rep.NetCancels.Sent != rep.Timeouts {
		t.Errorf("timeouts %d (purchases %d), net cancels sent %d: want one per timed-out purchase",
			rep.Timeouts, rep.ByType["purchase"].Timeouts, rep.NetCancels.Sent)
	}
	if int64(s.netCancels) != rep.NetCancels.Sent || len(s.dropped) != 0 || rep.NetCancels.Approved != rep.NetCancels.Sent {
		t.Errorf("server matched %d net cancels to swallowed purchases (%d left unreversed); report: %+v", s.netCancels, len(s.dropped), rep.NetCancels)
	}
	if len(s.violations) > 0 {
		t.Errorf("violations: %v", s.violations)
	}
	// Timeouts are counted, never recorded as latencies: an answered
	// request waited less than the timeout after it went out, so at most
	// the timeout plus how late the generator sent it (open-loop latency
	// counts from the intended send time; a loaded machine adds lag).
	lag := 0.0
	if rep.GeneratorLag != nil {
		lag = rep.GeneratorLag.Max
	}
	if ms2d(rep.Latency.Max) >= 200*time.Millisecond+ms2d(lag) {
		t.Errorf("max latency %.1fms (generator lag max %.1fms): timed-out requests leaked into the histogram", rep.Latency.Max, lag)
	}

	// A switch that still has the original in flight answers 94: repeat.
	rep94 := startSynth(t, time.Millisecond)
	rep94.drop, rep94.askRepeat = s.drop, true
	rep = run(t, Config{Addr: rep94.addr, Rate: 50, Count: 30, Terminals: 1, Timeout: 100 * time.Millisecond, Seed: 7})
	rep94.mu.Lock()
	if rep.Timeouts == 0 || rep.NetCancels.Repeats != rep.NetCancels.Sent || rep.NetCancels.Approved != rep.NetCancels.Sent ||
		int64(rep94.netCancels) != rep.NetCancels.Sent || len(rep94.violations) > 0 {
		t.Errorf("net cancels after a 94: %+v; server matched %d, violations %v", rep.NetCancels, rep94.netCancels, rep94.violations)
	}
	rep94.mu.Unlock()

	noNet := startSynth(t, time.Millisecond)
	noNet.drop = s.drop
	rep = run(t, Config{Addr: noNet.addr, Rate: 50, Count: 20, Terminals: 1, Timeout: 100 * time.Millisecond, NoNetCancel: true, Seed: 7})
	if rep.Timeouts == 0 || rep.NetCancels.Sent != 0 {
		t.Errorf("--no-net-cancel: timeouts %d, net cancels %d", rep.Timeouts, rep.NetCancels.Sent)
	}
}

// --count stops the run; so does the duration; an interrupt stops it early.
func TestRunStopsByItself(t *testing.T) {
	s := startSynth(t, 0)
	rep := run(t, Config{Addr: s.addr, Rate: 1000, Count: 50, Terminals: 1})
	if rep.Sent != 50 || rep.Answered != 50 {
		t.Errorf("--count 50: sent %d answered %d", rep.Sent, rep.Answered)
	}
	rep = run(t, Config{Addr: s.addr, Closed: 3, Count: 40, Terminals: 3})
	if rep.Sent != 40 {
		t.Errorf("closed --count 40: sent %d", rep.Sent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, Config{Addr: s.addr, Rate: 100, Duration: time.Hour, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("interrupted run took %s", took)
	}
	if rep.Sent == 0 || rep.Sent > 100 {
		t.Errorf("interrupted after 300ms at 100/s: sent %d", rep.Sent)
	}
}

func TestRemoteTargetRefused(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"10.0.0.1:8583", "192.0.2.7:8583", "[2001:db8::1]:8583", "[::ffff:10.1.2.3]:8583", "0.0.0.0:8583"} {
		if _, err := CheckTarget(ctx, addr, false); !errors.Is(err, ErrRemoteTarget) {
			t.Errorf("CheckTarget(%s): %v, want ErrRemoteTarget", addr, err)
		}
		if got, err := CheckTarget(ctx, addr, true); err != nil || got == "" {
			t.Errorf("CheckTarget(%s, allowRemote): %q %v", addr, got, err)
		}
		// Run refuses before connecting anywhere.
		if _, err := Run(ctx, Config{Addr: addr, Rate: 1, Count: 1}); !errors.Is(err, ErrRemoteTarget) {
			t.Errorf("Run against %s: %v, want ErrRemoteTarget", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8583", "127.9.8.7:1", "[::1]:8583", "[::ffff:127.0.0.1]:8583"} {
		if _, err := CheckTarget(ctx, addr, false); err != nil {
			t.Errorf("CheckTarget(%s): %v", addr, err)
		}
	}
	if got, err := CheckTarget(ctx, "localhost:8583", false); err != nil {
		t.Logf("localhost does not resolve here: %v", err)
	} else if got != "127.0.0.1:8583" && got != "[::1]:8583" {
		t.Errorf("localhost resolved to %s", got)
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", ":8583"} {
		if _, err := CheckTarget(ctx, addr, false); !errors.Is(err, ErrConfig) {
			t.Errorf("CheckTarget(%q): %v, want ErrConfig", addr, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no rate", Config{Duration: time.Second}},
		{"rate and closed", Config{Rate: 1, Closed: 1, Duration: time.Second}},
		{"no end", Config{Rate: 1}},
		{"too long", Config{Rate: 1, Duration: 2 * time.Hour}},
		{"too fast", Config{Rate: MaxRate + 1, Duration: time.Second}},
		{"bad arrivals", Config{Rate: 1, Duration: time.Second, Arrivals: "bursty"}},
		{"bad card", Config{Rate: 1, Duration: time.Second, Cards: []string{"12345"}}},
		{"amounts", Config{Rate: 1, Duration: time.Second, AmountMin: 10, AmountMax: 5}},
		{"no purchases", Config{Rate: 1, Duration: time.Second, Mix: Mix{Cancel: 1}}},
		{"prefix", Config{Rate: 1, Duration: time.Second, TerminalPrefix: "ABCDEFG", Terminals: 10}},
		{"closed POS", Config{Closed: 8, Duration: time.Second, Terminals: 4, OneOutstanding: true}},
	} {
		if _, err := Run(context.Background(), tc.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tc.name, err)
		}
	}
	if _, err := Run(context.Background(), Config{Addr: testnet.FreeAddr(t), Rate: 1, Count: 1, Timeout: time.Second}); !errors.Is(err, ErrConnect) {
		t.Errorf("nothing listening: %v, want ErrConnect", err)
	}
}

// A closed loop over VAN links spreads its requests over every terminal,
// not only the first Closed ones: a switch's per-terminal limits and
// per-terminal state see many terminal IDs, as in production.
func TestClosedLoopSpreadsOverTerminals(t *testing.T) {
	s := startSynth(t, 0)
	rep := run(t, Config{Addr: s.addr, Closed: 2, Terminals: 8, Count: 80})
	if rep.Answered != 80 {
		t.Fatalf("answered %d of 80", rep.Answered)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tids) != 8 {
		t.Fatalf("requests came from %d terminal IDs (%v), want all 8", len(s.tids), s.tids)
	}
	for tid, n := range s.tids {
		if n != 10 {
			t.Errorf("terminal %s sent %d requests, want 10 (round robin)", tid, n)
		}
	}
}

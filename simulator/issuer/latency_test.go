package issuer

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/specs"
)

// samples draws n delays from d with a fixed seed, sorted.
func samples(d LatencyDist, n int) []time.Duration {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d.Sample(r)
	}
	slices.Sort(out)
	return out
}

// quantile returns the q quantile of sorted s.
func quantile(s []time.Duration, q float64) time.Duration { return s[int(q*float64(len(s)-1))] }

func within(got, want time.Duration, tol float64) bool {
	return float64(got) >= float64(want)*(1-tol) && float64(got) <= float64(want)*(1+tol)
}

func TestLatencyDistShapes(t *testing.T) {
	const n = 5000
	t.Run("fixed", func(t *testing.T) {
		for _, d := range []LatencyDist{FixedLatency(20 * time.Millisecond), {Value: 20 * time.Millisecond}} {
			if s := samples(d, 100); s[0] != 20*time.Millisecond || s[99] != 20*time.Millisecond {
				t.Errorf("%s: samples from %s to %s", d, s[0], s[99])
			}
		}
	})
	t.Run("uniform", func(t *testing.T) {
		lo, hi := 5*time.Millisecond, 50*time.Millisecond
		s := samples(LatencyDist{Kind: LatencyUniform, Min: lo, Max: hi}, n)
		if s[0] < lo || s[n-1] > hi {
			t.Fatalf("samples from %s to %s, want within [%s, %s]", s[0], s[n-1], lo, hi)
		}
		// Quartiles of U[5ms, 50ms]: 16.25ms, 27.5ms, 38.75ms.
		for q, want := range map[float64]time.Duration{0.25: 16250 * time.Microsecond, 0.5: 27500 * time.Microsecond, 0.75: 38750 * time.Microsecond} {
			if got := quantile(s, q); !within(got, want, 0.05) {
				t.Errorf("q%.2f = %s, want about %s", q, got, want)
			}
		}
		if s[0] > lo+time.Millisecond || s[n-1] < hi-time.Millisecond {
			t.Errorf("samples from %s to %s do not span the range", s[0], s[n-1])
		}
		if s := samples(LatencyDist{Kind: LatencyUniform, Min: lo, Max: lo}, 10); s[0] != lo || s[9] != lo {
			t.Errorf("min == max: %v", s)
		}
	})
	for _, kind := range []LatencyKind{LatencyLognormal, LatencyPareto} {
		t.Run(string(kind), func(t *testing.T) {
			median, p99 := 20*time.Millisecond, 300*time.Millisecond
			s := samples(LatencyDist{Kind: kind, Median: median, P99: p99}, n)
			if got := quantile(s, 0.5); !within(got, median, 0.2) {
				t.Errorf("median %s, want %s within 20%%", got, median)
			}
			if got := quantile(s, 0.99); !within(got, p99, 0.3) {
				t.Errorf("p99 %s, want %s within 30%%", got, p99)
			}
			if s[0] <= 0 {
				t.Errorf("smallest sample %s", s[0])
			}
			// Long-tailed: the mean sits well above the median.
			var sum time.Duration
			for _, v := range s {
				sum += v
			}
			if mean := sum / n; mean < median*3/2 {
				t.Errorf("mean %s barely above the median %s: no long tail", mean, median)
			}
			// max caps, min floors.
			capped := samples(LatencyDist{Kind: kind, Median: median, P99: p99, Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}, n)
			if capped[0] < 10*time.Millisecond || capped[n-1] != 100*time.Millisecond {
				t.Errorf("clamped samples from %s to %s, want [10ms, 100ms] reaching the cap", capped[0], capped[n-1])
			}
		})
	}
	t.Run("pareto floor", func(t *testing.T) {
		// alpha = ln 50 / ln 15, scale = 20ms / 2^(1/alpha) ~ 12.38ms.
		scale := time.Duration(float64(20*time.Millisecond) / math.Pow(2, math.Log(15)/math.Log(50)))
		s := samples(LatencyDist{Kind: LatencyPareto, Median: 20 * time.Millisecond, P99: 300 * time.Millisecond}, n)
		if s[0] < scale || s[0] > scale*101/100 {
			t.Errorf("smallest pareto sample %s, want just above the scale %s", s[0], scale)
		}
	})
}

func TestLatencyDistValidateAndParse(t *testing.T) {
	ok := []struct {
		in   string
		want LatencyDist
	}{
		{"20ms", FixedLatency(20 * time.Millisecond)},
		{"fixed,value=20ms", FixedLatency(20 * time.Millisecond)},
		{"fixed", FixedLatency(0)},
		{"uniform,min=5ms,max=50ms", LatencyDist{Kind: LatencyUniform, Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}},
		{"lognormal, median=20ms, p99=300ms, max=2s", LatencyDist{Kind: LatencyLognormal, Median: 20 * time.Millisecond, P99: 300 * time.Millisecond, Max: 2 * time.Second}},
		{"pareto,median=20ms,p99=300ms,min=1ms", LatencyDist{Kind: LatencyPareto, Median: 20 * time.Millisecond, P99: 300 * time.Millisecond, Min: time.Millisecond}},
	}
	for _, tt := range ok {
		got, err := ParseLatencyDist(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLatencyDist(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if back, err := ParseLatencyDist(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q does not round-trip: %+v, %v", tt.in, got.String(), back, err)
		}
	}
	bad := []struct{ in, wantErr string }{
		{"-5ms", "negative"},
		{"gamma,median=1s", "unknown latency kind"},
		{"fixed,value=1s,median=2s", "does not take median"},
		{"uniform,min=50ms,max=5ms", "below min"},
		{"uniform,min=5ms,max=50ms,p99=1s", "does not take p99"},
		{"lognormal,median=20ms", "p99 > median > 0"},
		{"lognormal,median=300ms,p99=20ms", "p99 > median > 0"},
		{"pareto,median=20ms,p99=300ms,max=10ms", "bracket the median"},
		{"pareto,median=20ms,p99=300ms,min=30ms", "bracket the median"},
		{"lognormal,median=20ms,p99", "not key=duration"},
		{"lognormal,median=soon,p99=1s", "median"},
		{"lognormal,mean=20ms,p99=1s", "unknown parameter"},
	}
	for _, tt := range bad {
		if _, err := ParseLatencyDist(tt.in); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseLatencyDist(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
		}
	}
	if d := (LatencyDist{Kind: LatencyUniform, Min: 10 * time.Millisecond, Max: 30 * time.Millisecond}); d.Typical() != 20*time.Millisecond {
		t.Errorf("uniform Typical %s", d.Typical())
	}
}

// The issuer's draws repeat with its seed, and answers wait a delay drawn
// from the distribution in force.
func TestIssuerLatencyDistSeeded(t *testing.T) {
	dist := LatencyDist{Kind: LatencyLognormal, Median: 20 * time.Millisecond, P99: 300 * time.Millisecond}
	mk := func(seed uint64) *Issuer {
		is, err := New(Config{Name: "a", Addr: "127.0.0.1:0", BINs: []string{"9410"}, LatencyDist: dist, Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return is
	}
	draw := func(is *Issuer) []time.Duration {
		out := make([]time.Duration, 50)
		for i := range out {
			out[i] = is.sampleLatency()
		}
		return out
	}
	a, b, c := mk(7), mk(7), mk(8)
	if a.Seed() != 7 || a.LatencyDist() != dist || a.Latency() != dist.Median {
		t.Errorf("seed %d, dist %s, latency %s", a.Seed(), a.LatencyDist(), a.Latency())
	}
	da := draw(a)
	if !slices.Equal(da, draw(b)) {
		t.Error("same seed, different draws")
	}
	if slices.Equal(da, draw(c)) {
		t.Error("different seeds, same draws")
	}
	if mk(0).Seed() == 0 {
		t.Error("seed 0 not replaced by a time-based one")
	}

	// Through the request path: every answer's delay is a uniform draw.
	lo, hi := 100*time.Millisecond, 200*time.Millisecond
	if err := a.SetLatencyDist(LatencyDist{Kind: LatencyUniform, Min: lo, Max: hi}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetLatencyDist(LatencyDist{Kind: LatencyUniform, Min: hi, Max: lo}); err == nil {
		t.Error("SetLatencyDist took max < min")
	}
	seen := map[time.Duration]bool{}
	for range 200 {
		r := a.process(purchase(t, "0200", card("9410"), "1", ""), nil)
		if r.resp == nil || r.delay < lo || r.delay > hi {
			t.Fatalf("delay %s (answer %v), want within [%s, %s]", r.delay, r.resp != nil, lo, hi)
		}
		seen[r.delay] = true
	}
	if len(seen) < 150 {
		t.Errorf("%d distinct delays in 200 draws", len(seen))
	}
	if r := a.process(netMgmt(t, specs.NetMgmtEcho), nil); r.delay != 0 {
		t.Errorf("echo delayed by %s", r.delay)
	}
	a.SetLatency(30 * time.Millisecond)
	if a.LatencyDist() != FixedLatency(30*time.Millisecond) || a.Latency() != 30*time.Millisecond {
		t.Errorf("SetLatency: %s", a.LatencyDist())
	}
}

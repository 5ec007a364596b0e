package issuer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// LatencyKind names a response latency distribution.
type LatencyKind string

// The latency distributions.
const (
	// LatencyFixed delays every answer by Value.
	LatencyFixed LatencyKind = "fixed"
	// LatencyUniform draws uniformly from [Min, Max].
	LatencyUniform LatencyKind = "uniform"
	// LatencyLognormal is long-tailed: log-normal with the given Median
	// and 99th percentile P99.
	LatencyLognormal LatencyKind = "lognormal"
	// LatencyPareto is long-tailed with a heavier tail than log-normal:
	// Pareto (type I) with the given Median and P99; its floor (the Pareto
	// scale) is Median / 2^(1/alpha).
	LatencyPareto LatencyKind = "pareto"
)

// z99 is the standard normal quantile at 0.99.
const z99 = 2.3263478740408408

// LatencyDist is a response latency distribution: what each
// authorisation, financial or reversal answer waits before it is sent
// (network management is never delayed). The zero value is fixed 0.
//
// In YAML (Config.LatencyDist, key latency_dist) and in ParseLatencyDist:
//
//	{kind: fixed, value: 20ms}
//	{kind: uniform, min: 5ms, max: 50ms}
//	{kind: lognormal, median: 20ms, p99: 300ms}          # max: 2s caps it
//	{kind: pareto, median: 20ms, p99: 300ms, max: 5s}    # min: floors it
//
// Every kind takes only its own keys: fixed value; uniform min and max;
// lognormal and pareto median and p99 (p99 > median > 0) plus optional
// min (a floor) and max (a cap; 0 means none).
type LatencyDist struct {
	Kind   LatencyKind   `yaml:"kind"`
	Value  time.Duration `yaml:"value"`
	Min    time.Duration `yaml:"min"`
	Max    time.Duration `yaml:"max"`
	Median time.Duration `yaml:"median"`
	P99    time.Duration `yaml:"p99"`
}

// FixedLatency returns the fixed distribution of d.
func FixedLatency(d time.Duration) LatencyDist {
	return LatencyDist{Kind: LatencyFixed, Value: d}
}

// normalized returns d with an empty Kind read as fixed.
func (d LatencyDist) normalized() LatencyDist {
	if d.Kind == "" {
		d.Kind = LatencyFixed
	}
	return d
}

// Validate checks that d is a well-formed distribution.
func (d LatencyDist) Validate() error {
	d = d.normalized()
	if d.Value < 0 || d.Min < 0 || d.Max < 0 || d.Median < 0 || d.P99 < 0 {
		return fmt.Errorf("latency %s: durations must not be negative", d)
	}
	only := func(allowed ...string) error {
		set := map[string]bool{"value": d.Value != 0, "min": d.Min != 0, "max": d.Max != 0,
			"median": d.Median != 0, "p99": d.P99 != 0}
		for _, a := range allowed {
			delete(set, a)
		}
		var extra []string
		for k, v := range set {
			if v {
				extra = append(extra, k)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			return fmt.Errorf("latency kind %s does not take %s", d.Kind, strings.Join(extra, ", "))
		}
		return nil
	}
	switch d.Kind {
	case LatencyFixed:
		return only("value")
	case LatencyUniform:
		if d.Max < d.Min {
			return fmt.Errorf("uniform latency: max %s below min %s", d.Max, d.Min)
		}
		return only("min", "max")
	case LatencyLognormal, LatencyPareto:
		if d.Median <= 0 || d.P99 <= d.Median {
			return fmt.Errorf("%s latency: want p99 > median > 0, got median %s, p99 %s", d.Kind, d.Median, d.P99)
		}
		if (d.Max != 0 && d.Max < d.Median) || d.Min > d.Median {
			return fmt.Errorf("%s latency: min %s and max %s must bracket the median %s", d.Kind, d.Min, d.Max, d.Median)
		}
		return only("median", "p99", "min", "max")
	}
	return fmt.Errorf("unknown latency kind %q (want fixed, uniform, lognormal or pareto)", d.Kind)
}

// String renders d in ParseLatencyDist's form.
func (d LatencyDist) String() string {
	d = d.normalized()
	var b strings.Builder
	b.WriteString(string(d.Kind))
	add := func(k string, v time.Duration, always bool) {
		if v != 0 || always {
			fmt.Fprintf(&b, ",%s=%s", k, v)
		}
	}
	switch d.Kind {
	case LatencyFixed:
		add("value", d.Value, true)
	case LatencyUniform:
		add("min", d.Min, true)
		add("max", d.Max, true)
	default:
		add("median", d.Median, true)
		add("p99", d.P99, true)
		add("min", d.Min, false)
		add("max", d.Max, false)
	}
	return b.String()
}

// Typical returns one representative delay: the value of a fixed
// distribution, the midpoint of a uniform one, the median of a long-tailed
// one.
func (d LatencyDist) Typical() time.Duration {
	switch d = d.normalized(); d.Kind {
	case LatencyUniform:
		return d.Min + (d.Max-d.Min)/2
	case LatencyLognormal, LatencyPareto:
		return d.Median
	}
	return d.Value
}

// Sample draws one delay from d with r. d must be valid.
func (d LatencyDist) Sample(r *rand.Rand) time.Duration {
	var x float64 // nanoseconds
	switch d = d.normalized(); d.Kind {
	case LatencyUniform:
		if d.Max == d.Min {
			return d.Min
		}
		return d.Min + time.Duration(r.Int64N(int64(d.Max-d.Min)+1))
	case LatencyLognormal:
		sigma := math.Log(float64(d.P99)/float64(d.Median)) / z99
		x = float64(d.Median) * math.Exp(sigma*r.NormFloat64())
	case LatencyPareto:
		alpha := math.Log(50) / math.Log(float64(d.P99)/float64(d.Median))
		scale := float64(d.Median) / math.Pow(2, 1/alpha)
		x = scale * math.Pow(1-r.Float64(), -1/alpha) // 1-U lies in (0, 1]
	default:
		return d.Value
	}
	v := time.Duration(math.MaxInt64)
	if x < float64(math.MaxInt64) {
		v = time.Duration(math.Round(x))
	}
	v = max(v, d.Min)
	if d.Max > 0 {
		v = min(v, d.Max)
	}
	return v
}

// ParseLatencyDist reads the compact form String writes: the kind, then
// comma-separated key=duration pairs, e.g. "fixed,value=20ms",
// "uniform,min=5ms,max=50ms", "lognormal,median=20ms,p99=300ms,max=2s". A
// bare duration ("20ms") is fixed.
func ParseLatencyDist(s string) (LatencyDist, error) {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
		out := FixedLatency(d)
		return out, out.Validate()
	}
	parts := strings.Split(s, ",")
	params := make(map[string]string, len(parts)-1)
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return LatencyDist{}, fmt.Errorf("latency %q: %q is not key=duration", s, p)
		}
		params[k] = v
	}
	return latencyDistFrom(strings.TrimSpace(parts[0]), params)
}

// latencyDistFrom builds and validates a distribution from its kind and
// key=duration parameters (value, min, max, median, p99).
func latencyDistFrom(kind string, params map[string]string) (LatencyDist, error) {
	d := LatencyDist{Kind: LatencyKind(kind)}
	dst := map[string]*time.Duration{"value": &d.Value, "min": &d.Min, "max": &d.Max, "median": &d.Median, "p99": &d.P99}
	for k, v := range params {
		p, ok := dst[k]
		if !ok {
			return LatencyDist{}, fmt.Errorf("latency: unknown parameter %q (want value, min, max, median, p99)", k)
		}
		var err error
		if *p, err = time.ParseDuration(v); err != nil {
			return LatencyDist{}, fmt.Errorf("latency %s: %w", k, err)
		}
	}
	if err := d.Validate(); err != nil {
		return LatencyDist{}, err
	}
	return d.normalized(), nil
}

// SetLatencyDist makes every later authorisation, financial and reversal
// answer wait a delay drawn from d (with the issuer's seeded RNG).
func (is *Issuer) SetLatencyDist(d LatencyDist) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("issuer %q: %w", is.cfg.Name, err)
	}
	d = d.normalized()
	is.latency.Store(&d)
	is.log.Info("issuer latency set", zap.Stringer("latency", d))
	return nil
}

// LatencyDist returns the current latency distribution.
func (is *Issuer) LatencyDist() LatencyDist { return *is.latency.Load() }

// sampleLatency draws the delay of one answer.
func (is *Issuer) sampleLatency() time.Duration {
	d := is.latency.Load()
	if d.Kind == LatencyFixed {
		return d.Value
	}
	var v time.Duration
	is.rng.with(func(r *rand.Rand) { v = d.Sample(r) })
	return v
}

// Seed returns the seed of the issuer's random draws (latency, fault
// percentages, garbage bytes): Config.Seed, or the time-based one chosen
// when it was 0. Log it to replay a field run.
func (is *Issuer) Seed() uint64 { return is.rng.seed }

// lockedRand is a seeded *rand.Rand safe for concurrent use.
type lockedRand struct {
	seed uint64
	mu   sync.Mutex
	r    *rand.Rand
}

// newLockedRand seeds a PCG generator with seed (0: a time-based seed).
func newLockedRand(seed uint64) *lockedRand {
	for seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return &lockedRand{seed: seed, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// with runs f with the generator locked.
func (l *lockedRand) with(f func(*rand.Rand)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l.r)
}

// percent reports whether a draw falls under p percent.
func (l *lockedRand) percent(p int) bool {
	if p <= 0 {
		return false
	}
	if p >= 100 {
		return true
	}
	var hit bool
	l.with(func(r *rand.Rand) { hit = r.IntN(100) < p })
	return hit
}

var errLatencyAndDist = errors.New("set latency or latency_dist, not both")

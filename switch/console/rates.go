package console

import (
	"math"
	"sync"
	"time"
)

// sampler keeps the overviews the console read, so that each new one is
// compared with the one about a window ago: requests per second, approval
// rate and 99th percentile latency over the last minute come from the
// counters' differences. Sampling happens when the overview is viewed (it
// refreshes itself), so a first view has no rates yet.
type sampler struct {
	mu      sync.Mutex
	window  time.Duration
	samples []sample
}

type sample struct {
	at time.Time
	ov Overview
}

func newSampler(window time.Duration) *sampler { return &sampler{window: window} }

// add records ov taken at now and returns the sample to compare it with:
// the oldest one no older than the window (and at least a second old);
// ok is false when there is none yet.
func (s *sampler) add(now time.Time, ov Overview) (base sample, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.samples[:0]
	for _, x := range s.samples {
		if now.Sub(x.at) <= s.window+s.window/10 && !x.at.After(now) {
			keep = append(keep, x)
		}
	}
	s.samples = keep
	if len(s.samples) > 0 && now.Sub(s.samples[0].at) >= time.Second {
		base, ok = s.samples[0], true
	}
	if len(s.samples) == 0 || now.Sub(s.samples[len(s.samples)-1].at) >= time.Second {
		s.samples = append(s.samples, sample{now, ov}) // at most one a second
	}
	return base, ok
}

// perSecond is a counter's increase per second over d; NaN without a base.
func perSecond(now, then uint64, d time.Duration) float64 {
	if d <= 0 || now < then {
		return math.NaN()
	}
	return float64(now-then) / d.Seconds()
}

// ratio is part/whole of the increases; NaN when nothing happened.
func ratio(part, part0, whole, whole0 uint64) float64 {
	if whole <= whole0 || part < part0 {
		return math.NaN()
	}
	return float64(part-part0) / float64(whole-whole0)
}

// quantile is the q-quantile of the observations h holds beyond base,
// interpolated within its bucket as Prometheus' histogram_quantile does;
// NaN when there are none or the bounds differ.
func quantile(q float64, h, base Histogram) float64 {
	if len(h.Bounds) == 0 || len(h.Counts) != len(h.Bounds) {
		return math.NaN()
	}
	delta := make([]uint64, len(h.Counts))
	total := h.Count
	if len(base.Counts) == len(h.Counts) {
		if base.Count > total {
			return math.NaN()
		}
		total -= base.Count
		for i := range h.Counts {
			if base.Counts[i] > h.Counts[i] {
				return math.NaN()
			}
			delta[i] = h.Counts[i] - base.Counts[i]
		}
	} else if base.Count != 0 {
		return math.NaN()
	} else {
		copy(delta, h.Counts)
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, c := range delta {
		if float64(c) >= rank {
			inBucket := c - below
			if inBucket == 0 {
				return h.Bounds[i]
			}
			return lower + (h.Bounds[i]-lower)*(rank-float64(below))/float64(inBucket)
		}
		lower, below = h.Bounds[i], c
	}
	return h.Bounds[len(h.Bounds)-1] // in the +Inf bucket: the largest bound
}

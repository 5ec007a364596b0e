package bench

import (
	"slices"
	"time"
)

// combineRounds replaces the phases of a run of several rounds by one per
// path and load, each figure the median of that figure over the rounds
// (the counts summed: what every round sent, answered, approved), and
// keeps every round's own phases in RoundPhases. A run of one round is
// left as it is.
func (r *Results) combineRounds() {
	if r.Rounds <= 1 || r.RoundPhases != nil {
		return
	}
	r.RoundPhases = r.Phases
	type key struct{ path, load string }
	var order []key
	groups := map[key][]Phase{}
	for _, p := range r.RoundPhases {
		k := key{p.Path, p.Load}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	r.Phases = make([]Phase, 0, len(order))
	for _, k := range order {
		r.Phases = append(r.Phases, medianPhase(groups[k]))
	}
}

// medianPhase is the phases of one path and load over the rounds as one.
func medianPhase(ps []Phase) Phase {
	m := ps[0]
	m.Rounds, m.Round, m.StartedAt = len(ps), 0, time.Time{}
	m.ResponseCodes = map[string]int64{}
	m.Sent, m.Answered, m.Approved, m.Unanswered = 0, 0, 0, 0
	for _, p := range ps {
		m.Sent += p.Sent
		m.Answered += p.Answered
		m.Approved += p.Approved
		m.Unanswered += p.Unanswered
		for c, n := range p.ResponseCodes {
			m.ResponseCodes[c] += n
		}
	}
	// Each figure is the median of its rounds' values.
	rounds := make([][]*float64, len(ps))
	for k := range ps {
		rounds[k] = figures(&ps[k])
	}
	vals := make([]float64, len(ps))
	for i, dst := range figures(&m) {
		for k := range rounds {
			vals[k] = *rounds[k][i]
		}
		*dst = median(vals)
	}
	// Steal is the worst round's: the column points at a disturbed round.
	m.StealPct = 0
	for _, p := range ps {
		m.StealPct = max(m.StealPct, p.StealPct)
	}
	if len(ps) > 1 {
		m.TPSRange = spread(ps, func(p Phase) float64 { return p.TPS })
		if m.CPUPerTxnUS > 0 {
			m.CPURange = spread(ps, func(p Phase) float64 { return p.CPUPerTxnUS })
		}
	}
	return m
}

// figures are the measured figures of p that rounds combine by median.
func figures(p *Phase) []*float64 {
	return []*float64{&p.TPS, &p.P50, &p.P99, &p.P999, &p.Max, &p.GeneratorLagP99, &p.CPUPerTxnUS, &p.CPUSeconds,
		&p.CommitsPerTxn, &p.WritesPerCommit, &p.PeakRSSMiB, &p.IssuerCPUPerTxnUS}
}

// median is the middle of vs (the mean of the two middle ones when even);
// vs is sorted in place.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[n/2]
}

// spread is the lowest and highest of get over ps.
func spread(ps []Phase, get func(Phase) float64) []float64 {
	lo, hi := get(ps[0]), get(ps[0])
	for _, p := range ps[1:] {
		lo, hi = min(lo, get(p)), max(hi, get(p))
	}
	return []float64{lo, hi}
}

package bench

import (
	"slices"
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
	m.Rounds = len(ps)
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
	median := func(get func(Phase) float64) float64 {
		vs := make([]float64, len(ps))
		for i, p := range ps {
			vs[i] = get(p)
		}
		slices.Sort(vs)
		if n := len(vs); n%2 == 0 {
			return (vs[n/2-1] + vs[n/2]) / 2
		}
		return vs[len(vs)/2]
	}
	span := func(get func(Phase) float64) []float64 {
		lo, hi := get(ps[0]), get(ps[0])
		for _, p := range ps[1:] {
			lo, hi = min(lo, get(p)), max(hi, get(p))
		}
		return []float64{lo, hi}
	}
	for _, f := range []struct {
		dst *float64
		get func(Phase) float64
	}{
		{&m.TPS, func(p Phase) float64 { return p.TPS }},
		{&m.P50, func(p Phase) float64 { return p.P50 }},
		{&m.P99, func(p Phase) float64 { return p.P99 }},
		{&m.P999, func(p Phase) float64 { return p.P999 }},
		{&m.Max, func(p Phase) float64 { return p.Max }},
		{&m.GeneratorLagP99, func(p Phase) float64 { return p.GeneratorLagP99 }},
		{&m.CPUPerTxnUS, func(p Phase) float64 { return p.CPUPerTxnUS }},
		{&m.CPUSeconds, func(p Phase) float64 { return p.CPUSeconds }},
		{&m.CommitsPerTxn, func(p Phase) float64 { return p.CommitsPerTxn }},
		{&m.WritesPerCommit, func(p Phase) float64 { return p.WritesPerCommit }},
		{&m.PeakRSSMiB, func(p Phase) float64 { return p.PeakRSSMiB }},
		{&m.IssuerCPUPerTxnUS, func(p Phase) float64 { return p.IssuerCPUPerTxnUS }},
	} {
		*f.dst = median(f.get)
	}
	if len(ps) > 1 {
		m.TPSRange = span(func(p Phase) float64 { return p.TPS })
		if m.CPUPerTxnUS > 0 {
			m.CPURange = span(func(p Phase) float64 { return p.CPUPerTxnUS })
		}
	}
	return m
}

package bench

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestRoundsCombineToMedians: three rounds of two paths become one phase
// per path and load, each figure the median of its rounds, the counts
// summed, the TPS and CPU ranges kept, and the ratios taken between the
// medians; every round's own phases stay in round_phases.
func TestRoundsCombineToMedians(t *testing.T) {
	r := &Results{Rounds: 3}
	for i, round := range []struct{ direct, pan, cpu float64 }{{1000, 300, 90}, {800, 320, 70}, {1100, 200, 110}} {
		r.add(Phase{Path: PathDirect, Load: "closed-16", Round: i + 1, TPS: round.direct, P99: 2, Answered: 10, Approved: 10, Sent: 10,
			ResponseCodes: map[string]int64{"00": 10}})
		r.add(Phase{Path: PathPAN, Load: "closed-16", Round: i + 1, TPS: round.pan, StealPct: round.cpu / 10, P99: 5, CPUPerTxnUS: round.cpu, CommitsPerTxn: round.cpu / 100,
			Answered: 5, Approved: 4, Sent: 6, Unanswered: 1, ResponseCodes: map[string]int64{"00": 4, "91": 1}})
	}
	r.finish()
	if len(r.Phases) != 2 || len(r.RoundPhases) != 6 {
		t.Fatalf("%d phases, %d round phases; want 2 and 6", len(r.Phases), len(r.RoundPhases))
	}
	d, p := r.Phases[0], r.Phases[1]
	if d.Path != PathDirect || d.TPS != 1000 || d.Rounds != 3 || !slices.Equal(d.TPSRange, []float64{800, 1100}) {
		t.Errorf("direct: %+v", d)
	}
	if p.TPS != 300 || p.CPUPerTxnUS != 90 || p.CommitsPerTxn != 0.9 || !slices.Equal(p.CPURange, []float64{70, 110}) {
		t.Errorf("switch-pan medians: TPS %v, CPU %v, commits %v, CPU range %v", p.TPS, p.CPUPerTxnUS, p.CommitsPerTxn, p.CPURange)
	}
	if p.Answered != 15 || p.Approved != 12 || p.Sent != 18 || p.Unanswered != 3 || p.ResponseCodes["91"] != 3 {
		t.Errorf("switch-pan counts not summed: %+v", p)
	}
	if p.TPSRatio != 0.3 {
		t.Errorf("TPS ratio %v, want the medians' 300/1000", p.TPSRatio)
	}
	if p.StealPct != 11 {
		t.Errorf("steal %v %%, want the worst round's 11", p.StealPct)
	}
	// The pair's ratio is taken within each round, then the median.
	if len(r.Pairs) != 1 || !slices.Equal(r.Pairs[0].TPSRounds, []float64{0.3, 0.4, 0.182}) || r.Pairs[0].TPSRatio != 0.3 {
		t.Errorf("pairs %+v, want switch-pan over direct: 0.3, 0.4, 0.182 by round, median 0.3", r.Pairs)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"300 (200-320)", "90.0 (70-110)", "median of 3 rounds"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, &table)
		}
	}

	// One round is left as measured.
	one := &Results{Rounds: 1, Phases: []Phase{{Path: PathDirect, Load: "closed-16", TPS: 7}}}
	one.finish()
	if len(one.RoundPhases) != 0 || one.Phases[0].Rounds != 0 || one.Phases[0].TPSRange != nil {
		t.Errorf("a single round was combined: %+v", one)
	}
}

// TestCompareRows: a path the compared build ran gets its TPS and CPU per
// transaction over the first build's; paths it did not run get no row.
func TestCompareRows(t *testing.T) {
	r := &Results{Rounds: 1, Phases: []Phase{
		{Path: PathDirect, Load: "closed-64", TPS: 1000},
		{Path: PathPAN, Load: "closed-64", TPS: 400, CPUPerTxnUS: 200},
		{Path: PathPAN + CompareSuffix, Load: "closed-64", TPS: 500, CPUPerTxnUS: 150},
		{Path: PathToken, Load: "closed-64", TPS: 300, CPUPerTxnUS: 250},
	}}
	r.finish()
	if len(r.Compare) != 1 {
		t.Fatalf("compare rows %+v, want one", r.Compare)
	}
	if c := r.Compare[0]; c.Path != PathPAN+CompareSuffix || c.Over != PathPAN || c.Load != "closed-64" || c.TPSRatio != 1.25 || c.CPURatio != 0.75 {
		t.Errorf("compare row %+v, want switch-pan@compare over switch-pan closed-64 TPS x1.25 CPU x0.75", c)
	}
	if p := r.Phases[2]; p.TPSRatio != 0.5 {
		t.Errorf("the compared phase's TPS ratio to direct %v, want 0.5", p.TPSRatio)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "switch-pan@compare over switch-pan    closed-64  TPS x1.250 (1.250)  CPU/txn x0.750 (0.750)") {
		t.Errorf("table lacks the comparison:\n%s", &table)
	}
}

// TestRatios: each round's ratio of the two paths' phases of that round,
// the median of them as the row's figure; pairs or rounds that did not
// both run give no row or no value, and CPU only where both paths have a
// middle process.
func TestRatios(t *testing.T) {
	ph := func(path, load string, round int, tps, cpu float64) Phase {
		return Phase{Path: path, Load: load, Round: round, TPS: tps, CPUPerTxnUS: cpu, StealPct: 1}
	}
	stolen := func(p Phase) Phase { p.StealPct = stealMark; return p }
	phases := []Phase{
		ph(PathDirect, "closed-16", 1, 10000, 0), ph(PathPAN, "closed-16", 1, 2000, 300), ph(PathToken, "closed-16", 1, 1800, 330),
		ph(PathDirect, "closed-16", 2, 8000, 0), ph(PathPAN, "closed-16", 2, 4000, 200), stolen(ph(PathToken, "closed-16", 2, 4400, 180)),
		ph(PathDirect, "closed-16", 3, 9000, 0), ph(PathPAN, "closed-16", 3, 2700, 250), // switch-token failed in round 3
		ph(PathPAN, "open-1000", 1, 1000, 600),
	}
	got := ratios(phases, pairs)
	want := []RatioRow{
		{Path: PathPAN, Over: PathDirect, Load: "closed-16", TPSRatio: 0.3, TPSRounds: []float64{0.2, 0.5, 0.3}},
		{Path: PathToken, Over: PathPAN, Load: "closed-16", TPSRatio: 1, CPURatio: 1, TPSRounds: []float64{0.9, 1.1}, CPURounds: []float64{1.1, 0.9}, Stolen: []bool{false, true}, CPUStolen: []bool{false, true}},
	}
	if len(got) != len(want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	nearAll := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, near)
	}
	for i, w := range want {
		g := got[i]
		if g.Path != w.Path || g.Over != w.Over || g.Load != w.Load || !near(g.TPSRatio, w.TPSRatio) || !near(g.CPURatio, w.CPURatio) ||
			!nearAll(g.TPSRounds, w.TPSRounds) || !nearAll(g.CPURounds, w.CPURounds) || !slices.Equal(g.Stolen, w.Stolen) || !slices.Equal(g.CPUStolen, w.CPUStolen) {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	// The round the host disturbed is marked, with a legend.
	var table bytes.Buffer
	writeRatios(&table, got)
	if !strings.Contains(table.String(), "TPS x1.000 (0.900 1.100*)  CPU/txn x1.000 (1.100 0.900*)") || !strings.Contains(table.String(), "* a round in which") {
		t.Errorf("ratios table does not mark round 2:\n%s", &table)
	}
	// One round (Round 1 everywhere) gives one value a row; the compared
	// build's rows pair each path with its own.
	one := []Phase{ph(PathRelay, "closed-64", 1, 9000, 40), ph(PathRelay+CompareSuffix, "closed-64", 1, 8100, 44)}
	cmp := ratios(one, comparePairs(one))
	if len(cmp) != 1 || cmp[0].Path != PathRelay+CompareSuffix || cmp[0].Over != PathRelay || !near(cmp[0].TPSRatio, 0.9) || !near(cmp[0].CPURatio, 1.1) {
		t.Errorf("compare rows %+v, want relay@compare over relay: TPS ×0.9, CPU ×1.1", cmp)
	}
}

// TestSlotOrder: every started path once under each load, forwards and
// backwards in turn, each round starting the other way from the one
// before.
func TestSlotOrder(t *testing.T) {
	for _, tc := range []struct {
		n, load, round int
		want           []int
	}{
		{4, 0, 0, []int{0, 1, 2, 3}},
		{4, 1, 0, []int{3, 2, 1, 0}},
		{4, 2, 0, []int{0, 1, 2, 3}},
		{4, 0, 1, []int{3, 2, 1, 0}},
		{4, 3, 2, []int{3, 2, 1, 0}},
		{1, 5, 7, []int{0}},
	} {
		if got := slotOrder(tc.n, tc.load, tc.round); !slices.Equal(got, tc.want) {
			t.Errorf("slotOrder(%d, %d, %d) = %v, want %v", tc.n, tc.load, tc.round, got, tc.want)
		}
	}
	// The pairs the targets compare are measured next to each other or
	// one apart.
	for _, pr := range pairs {
		if d := measureRank(pr[0]) - measureRank(pr[1]); d < -2 || d > 2 || measureRank(pr[0]) == len(measureOrder) {
			t.Errorf("%s and %s are %d apart in measureOrder", pr[0], pr[1], d)
		}
	}
}

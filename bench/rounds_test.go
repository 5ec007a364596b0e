package bench

import (
	"bytes"
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
	for _, round := range []struct{ direct, pan, cpu float64 }{{1000, 300, 90}, {800, 320, 70}, {1100, 200, 110}} {
		r.add(Phase{Path: PathDirect, Load: "closed-16", TPS: round.direct, P99: 2, Answered: 10, Approved: 10, Sent: 10,
			ResponseCodes: map[string]int64{"00": 10}})
		r.add(Phase{Path: PathPAN, Load: "closed-16", TPS: round.pan, P99: 5, CPUPerTxnUS: round.cpu, CommitsPerTxn: round.cpu / 100,
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
// transaction over the first build's, from the medians; paths it did not
// run get no row.
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
	if c := r.Compare[0]; c.Path != PathPAN || c.Load != "closed-64" || c.TPSRatio != 1.25 || c.CPURatio != 0.75 {
		t.Errorf("compare row %+v, want switch-pan closed-64 TPS x1.25 CPU x0.75", c)
	}
	if p := r.Phases[2]; p.TPSRatio != 0.5 {
		t.Errorf("the compared phase's TPS ratio to direct %v, want 0.5", p.TPSRatio)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "TPS x1.250  CPU/txn x0.750") {
		t.Errorf("table lacks the comparison:\n%s", &table)
	}
}

package opsmetrics_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kbpay/switch/switch/opsmetrics"
)

// TestSeries: the reload and commit series exist at zero from the start,
// a refused reload flips the last-reload gauge to 0 and an applied one
// back to 1, commits are counted by result and a committed group's
// writes are counted, and so are held groups and what they gained.
func TestSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := opsmetrics.New(reg)
	for name, want := range map[string]int{
		"payswitch_build_info": 1, "payswitch_config_reloads_total": 2, "payswitch_journal_commit_duration_seconds": 2,
		"payswitch_config_last_reload_successful": 1, "payswitch_config_last_reload_timestamp_seconds": 1,
		"payswitch_journal_commit_writes": 1, "payswitch_journal_group_hold_seconds": 1,
		"payswitch_journal_group_hold_gained_writes": 1,
	} {
		if got := len(family(t, reg, name).GetMetric()); got != want {
			t.Errorf("%s: %d series, want %d", name, got, want)
		}
	}
	valid := func() float64 {
		return family(t, reg, "payswitch_config_last_reload_successful").GetMetric()[0].GetGauge().GetValue()
	}
	m.Reloaded(errors.New("bad file"))
	if got := valid(); got != 0 {
		t.Errorf("after a refused reload: %v", got)
	}
	m.Reloaded(nil)
	if got := valid(); got != 1 {
		t.Errorf("after an applied reload: %v", got)
	}
	m.ObserveCommit(time.Millisecond, 3, nil)
	m.ObserveCommit(time.Millisecond, 1, errors.New("fsync"))
	var commits uint64
	for _, x := range family(t, reg, "payswitch_journal_commit_duration_seconds").GetMetric() {
		commits += x.GetHistogram().GetSampleCount()
	}
	if commits != 2 {
		t.Errorf("%d commits observed, want 2", commits)
	}
	// Only the group that committed counts its writes.
	h := family(t, reg, "payswitch_journal_commit_writes").GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 3 {
		t.Errorf("writes per commit: %d groups, %v writes; want 1 group of 3", h.GetSampleCount(), h.GetSampleSum())
	}
	m.ObserveHold(300*time.Microsecond, 2)
	m.ObserveHold(200*time.Microsecond, 0)
	held := family(t, reg, "payswitch_journal_group_hold_seconds").GetMetric()[0].GetHistogram()
	if held.GetSampleCount() != 2 || math.Abs(held.GetSampleSum()-0.0005) > 1e-12 {
		t.Errorf("holds: %d lasting %vs in all; want 2 lasting 0.0005s", held.GetSampleCount(), held.GetSampleSum())
	}
	gained := family(t, reg, "payswitch_journal_group_hold_gained_writes").GetMetric()[0].GetHistogram()
	if gained.GetSampleSum() != 2 || gained.GetBucket()[0].GetUpperBound() != 0 || gained.GetBucket()[0].GetCumulativeCount() != 1 {
		t.Errorf("gained: %v writes, first bucket %v; want 2 writes and one fruitless hold (le 0)", gained.GetSampleSum(), gained.GetBucket()[0])
	}
}

// family is the metric family name gathered from reg.
func family(t *testing.T, reg prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

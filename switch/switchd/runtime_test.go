package switchd

import (
	"runtime/debug"
	"testing"

	"github.com/kbpay/switch/switch/config"
)

// fakeRuntime records what applyRuntime sets, starting from the Go defaults.
type fakeRuntime struct {
	percent     int
	limit       int64
	setPercents int
	setLimits   int
}

func (f *fakeRuntime) knobs() gcKnobs {
	return gcKnobs{
		setGCPercent: func(p int) int {
			old := f.percent
			f.percent = p
			f.setPercents++
			return old
		},
		setMemoryLimit: func(l int64) int64 {
			old := f.limit
			if l >= 0 {
				f.limit = l
				f.setLimits++
			}
			return old
		},
	}
}

func TestApplyRuntime(t *testing.T) {
	const goDefaultLimit = int64(config.NoMemoryLimit)
	rc := config.Runtime{GCPercent: 250, MemoryLimit: 512 << 20}
	tests := []struct {
		name             string
		env              map[string]string
		wantPercent      int
		wantLimit        int64
		wantFrom         [2]string
		wantLimitApplied bool
	}{
		{name: "configuration applied", wantPercent: 250, wantLimit: 512 << 20, wantFrom: [2]string{"config", "config"}, wantLimitApplied: true},
		{name: "GOGC wins", env: map[string]string{"GOGC": "100"}, wantPercent: 100, wantLimit: 512 << 20, wantFrom: [2]string{"GOGC", "config"}, wantLimitApplied: true},
		{name: "GOMEMLIMIT wins", env: map[string]string{"GOMEMLIMIT": "1GiB"}, wantPercent: 250, wantLimit: goDefaultLimit, wantFrom: [2]string{"config", "GOMEMLIMIT"}},
		{name: "both from the environment", env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, wantPercent: 100, wantLimit: goDefaultLimit, wantFrom: [2]string{"GOGC", "GOMEMLIMIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The fake starts where the Go runtime starts without GOGC/GOMEMLIMIT
			// (or, for the cases setting them, where the runtime put them: here 100).
			f := &fakeRuntime{percent: 100, limit: goDefaultLimit}
			fields := applyRuntime(rc, func(k string) string { return tt.env[k] }, f.knobs())
			if f.percent != tt.wantPercent || f.limit != tt.wantLimit {
				t.Errorf("gc percent %d limit %d, want %d %d", f.percent, f.limit, tt.wantPercent, tt.wantLimit)
			}
			if (f.setLimits > 0) != tt.wantLimitApplied {
				t.Errorf("memory limit set %d times, want applied %v", f.setLimits, tt.wantLimitApplied)
			}
			got := map[string]string{}
			for _, fl := range fields {
				if fl.String != "" {
					got[fl.Key] = fl.String
				}
			}
			if got["gc_percent_from"] != tt.wantFrom[0] || got["memory_limit_from"] != tt.wantFrom[1] {
				t.Errorf("log fields %v, want from %v", got, tt.wantFrom)
			}
		})
	}
}

// TestApplyRuntimeSetsTheGoRuntime applies the defaults to this test process
// through runtime/debug, then puts the previous settings back.
func TestApplyRuntimeSetsTheGoRuntime(t *testing.T) {
	oldPercent, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	applyRuntime(config.Default().Runtime, func(string) string { return "" }, runtimeDebug)
	if got := debug.SetGCPercent(100); got != config.DefaultGCPercent {
		t.Errorf("GC percent %d, want %d", got, config.DefaultGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != config.DefaultMemoryLimit {
		t.Errorf("memory limit %d, want %d", got, config.DefaultMemoryLimit)
	}
}

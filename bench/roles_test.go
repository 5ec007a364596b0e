package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// syntheticProfile is a CPU profile with one sample per entry: its role
// label ("" for none), innermost function and CPU nanoseconds.
func syntheticProfile(t *testing.T, samples []struct {
	role, leaf string
	ns         int64
}) *bytes.Buffer {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	for i, s := range samples {
		fn := &profile.Function{ID: uint64(i + 1), Name: s.leaf}
		loc := &profile.Location{ID: uint64(i + 1), Line: []profile.Line{{Function: fn}}}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
		sample := &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1, s.ns}}
		if s.role != "" {
			sample.Label = map[string][]string{"role": {s.role}}
		}
		p.Sample = append(p.Sample, sample)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestCPUByRole(t *testing.T) {
	prof := syntheticProfile(t, []struct {
		role, leaf string
		ns         int64
	}{
		{"journal", "internal/runtime/syscall/linux.Syscall6", 30_000_000},
		{"journal", "modernc.org/sqlite/lib._sqlite3VdbeExec", 20_000_000},
		{"pipeline", "github.com/moov-io/iso8583.(*Message).getField", 60_000_000},
		{"pipeline", "syscall.RawSyscall6", 10_000_000},
		{"", "runtime.findRunnable", 10_000_000},
	})
	got, err := cpuByRole(prof, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []RoleCPU{
		{Role: "pipeline", US: 70, SyscallUS: 10},
		{Role: "journal", US: 50, SyscallUS: 30},
		{Role: NoRole, US: 10},
	}
	if len(got) != len(want) {
		t.Fatalf("roles %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Role != want[i].Role || math.Abs(got[i].US-want[i].US) > 1e-9 || math.Abs(got[i].SyscallUS-want[i].SyscallUS) > 1e-9 {
			t.Errorf("role %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if line := formatRoles(got); line != "pipeline 70.0 (10.0), journal 50.0 (30.0), runtime/other 10.0 (0.0)" {
		t.Errorf("formatted: %q", line)
	}
}

func TestCPUByRoleRefuses(t *testing.T) {
	heap := &profile.Profile{SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}}}
	var b bytes.Buffer
	if err := heap.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		txns int64
		want string
	}{
		{"no transactions", b.Bytes(), 0, "no transactions"},
		{"not a profile", []byte("<html>"), 10, "cpu by role"},
		{"not a CPU profile", b.Bytes(), 10, "not a CPU profile"},
	} {
		if _, err := cpuByRole(bytes.NewReader(c.data), c.txns); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

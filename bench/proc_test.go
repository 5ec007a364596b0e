package bench

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		bad        bool
	}{
		{"plain", "1234 (switchd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parens", "77 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 0 0 0", 100 * time.Millisecond, false},
		{"no name", "1234 switchd S 1", 0, true},
		{"short", "1 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 3 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error %t", err, tc.bad)
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tswitchd\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\n"
	for field, want := range map[string]int64{"VmHWM": 51234, "VmRSS": 40960} {
		got, err := parseStatusKB([]byte(status), field)
		if err != nil || got != want {
			t.Errorf("%s: got %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := parseStatusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("a missing field must be an error")
	}
}

// The harness reads its own process like a child's.
func TestProcOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	hwm, err := memKB(os.Getpid(), "VmHWM")
	if err != nil || hwm <= 0 {
		t.Fatalf("VmHWM %d, %v", hwm, err)
	}
}

// TestSettle: settle returns once the started processes are quiet, says
// how busy they still are when they are not, and reports a process that
// ended as errPathEnded (the round stops instead of measuring on).
func TestSettle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	start := func(name string, args ...string) *process {
		p, err := startProcess(name, "/bin/sh", t.TempDir(), nil, append([]string{"-c"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.stop(5 * time.Second) })
		return p
	}
	ctx := context.Background()
	idle := []*slot{{path: PathDirect, t: &target{issuer: start("sleeper", "exec sleep 60")}}}
	if err := settle(ctx, idle, 0.1, 200*time.Millisecond, 10*time.Second); err != nil {
		t.Errorf("a sleeping process: %v, want settled", err)
	}
	spinning := append(idle, &slot{path: PathRelay, t: &target{issuer: start("spinner", "while :; do :; done")}})
	err := settle(ctx, spinning, 0.1, 200*time.Millisecond, time.Second)
	if err == nil || !strings.Contains(err.Error(), "CPUs busy") {
		t.Errorf("a spinning process: %v, want still busy", err)
	}
	ended := start("ended", "exit 0")
	<-ended.exited
	err = settle(ctx, append(idle, &slot{path: PathPAN, t: &target{issuer: ended}}), 0.1, 200*time.Millisecond, 10*time.Second)
	if !errors.Is(err, errPathEnded) {
		t.Errorf("an ended process: %v, want errPathEnded", err)
	}
}

func TestParseMachineTicks(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       machineTicks
		bad        bool
	}{
		// guest time (20, 1) is inside user and nice: not counted again
		{"full", "cpu  100 2 30 500 10 0 8 50 20 1\ncpu0 50 1 15 250 5 0 4 25 10 0\n", machineTicks{total: 700, steal: 50}, false},
		{"no guest columns", "cpu 1 0 1 10 0 0 0 3\n", machineTicks{total: 15, steal: 3}, false},
		{"per-CPU line first", "cpu0 1 0 1 10 0 0 0 3\n", machineTicks{}, true},
		{"short", "cpu 1 2 3\n", machineTicks{}, true},
		{"not a number", "cpu 1 x 1 10 0 0 0 3\n", machineTicks{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMachineTicks([]byte(tc.stat))
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %t", got, err, tc.want, tc.bad)
			}
		})
	}
	a, b := machineTicks{total: 1000, steal: 10}, machineTicks{total: 2000, steal: 60}
	if got := stealPct(a, b); got != 5 {
		t.Errorf("steal %v %%, want 5", got)
	}
	if got := stealPct(b, b); got != 0 {
		t.Errorf("steal over no time %v %%, want 0", got)
	}
	if _, err := readMachineTicks(); err != nil {
		t.Errorf("this machine's /proc/stat: %v", err)
	}
}

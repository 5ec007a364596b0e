package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// machineTicks are the machine's CPU times from /proc/stat's "cpu" line,
// all CPUs together, in USER_HZ ticks: steal is what the hypervisor ran
// elsewhere while this machine wanted the CPU (another tenant).
type machineTicks struct {
	total, steal int64
}

// readMachineTicks reads /proc/stat.
func readMachineTicks() (machineTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}, fmt.Errorf("reading machine CPU times: %w", err)
	}
	return parseMachineTicks(b)
}

// parseMachineTicks reads the first line of /proc/stat: "cpu user nice
// system idle iowait irq softirq steal guest guest_nice" (guest time is
// inside user and nice, so it is not added again).
func parseMachineTicks(stat []byte) (machineTicks, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return machineTicks{}, errors.New("malformed /proc/stat: no cpu line of 8 times")
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(string(f[i+1]), 10, 64)
		if err != nil {
			return machineTicks{}, fmt.Errorf("malformed /proc/stat time %q: %w", f[i+1], err)
		}
		v[i] = n
	}
	t := machineTicks{steal: v[7]}
	for _, n := range v {
		t.total += n
	}
	return t, nil
}

// stealPct is the share of the machine's CPU time between a and b that
// the hypervisor gave to others, in percent (0 when no time passed).
func stealPct(a, b machineTicks) float64 {
	if b.total <= a.total {
		return 0
	}
	return 100 * float64(b.steal-a.steal) / float64(b.total-a.total)
}

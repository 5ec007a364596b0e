package bench

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/kbpay/switch/internal/cpurole"
)

// NoRole is the role of samples taken outside any labelled goroutine: the
// Go runtime's scheduler and garbage collector, and goroutines switchd
// does not label.
const NoRole = "runtime/other"

// RoleCPU is switchd's CPU in one goroutine role (internal/cpurole) over a
// profiled phase, per answered transaction, and the part of it spent in
// system calls (a sample whose innermost frame is a system call: socket
// reads and writes, pwrite and fdatasync, file locks, epoll).
type RoleCPU struct {
	Role      string  `json:"role"`
	US        float64 `json:"us_per_txn"`
	SyscallUS float64 `json:"syscall_us_per_txn"`
}

// cpuByRole reads a CPU profile and divides each role's CPU by txns,
// largest first.
func cpuByRole(r io.Reader, txns int64) ([]RoleCPU, error) {
	if txns <= 0 {
		return nil, fmt.Errorf("cpu by role: no transactions")
	}
	p, err := profile.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("cpu by role: %w", err)
	}
	vi := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" && t.Unit == "nanoseconds" })
	if vi < 0 {
		return nil, fmt.Errorf("cpu by role: not a CPU profile (no cpu/nanoseconds sample type)")
	}
	byRole := map[string]*RoleCPU{}
	for _, s := range p.Sample {
		role := NoRole
		if l := s.Label[cpurole.Key]; len(l) > 0 {
			role = l[0]
		}
		rc := byRole[role]
		if rc == nil {
			rc = &RoleCPU{Role: role}
			byRole[role] = rc
		}
		us := float64(s.Value[vi]) / 1e3 / float64(txns)
		rc.US += us
		if inSyscall(s) {
			rc.SyscallUS += us
		}
	}
	out := make([]RoleCPU, 0, len(byRole))
	for _, rc := range byRole {
		out = append(out, *rc)
	}
	slices.SortFunc(out, func(a, b RoleCPU) int {
		return cmp.Or(cmp.Compare(b.US, a.US), strings.Compare(a.Role, b.Role))
	})
	return out, nil
}

// inSyscall: the sample's innermost function is the system call itself.
func inSyscall(s *profile.Sample) bool {
	if len(s.Location) == 0 || len(s.Location[0].Line) == 0 || s.Location[0].Line[0].Function == nil {
		return false
	}
	name := s.Location[0].Line[0].Function.Name
	return strings.HasPrefix(name, "syscall.") || strings.HasPrefix(name, "internal/runtime/syscall.") ||
		strings.HasPrefix(name, "internal/runtime/syscall/linux.")
}

// rolesOf is cpuByRole of the profile in file.
func rolesOf(file string, txns int64) ([]RoleCPU, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return cpuByRole(f, txns)
}

// formatRoles is the roles on one line: "journal 62.4 (25.6 in syscalls), ...".
func formatRoles(roles []RoleCPU) string {
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = fmt.Sprintf("%s %.1f (%.1f)", r.Role, r.US, r.SyscallUS)
	}
	return strings.Join(parts, ", ")
}

package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/hosttool"
)

// unitFile is a systemd unit: section -> key -> values (a key may repeat).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, raw string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	for n, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("switchd.service line %d: %q is not key=value in a section", n+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestSystemdUnit: the unit drains on stop (SIGTERM, a stop timeout above
// drain_timeout), restarts on failure, allows 20k connections, is
// hardened with only the data folder writable, and passes
// systemd-analyze verify.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("switchd.service")
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, string(raw))
	cfg := exampleConfig(t)
	for _, want := range []struct{ key, value string }{
		{"KillSignal", "SIGTERM"},
		{"Restart", "on-failure"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
	} {
		if got := u.last("Service", want.key); got != want.value {
			t.Errorf("[Service] %s=%q, want %q", want.key, got, want.value)
		}
	}
	if !strings.Contains(u.last("Service", "ExecStart"), "--config") {
		t.Errorf("ExecStart %q does not pass --config", u.last("Service", "ExecStart"))
	}
	if !strings.Contains(u.last("Service", "ReadWritePaths"), "/var/lib/switchd") {
		t.Errorf("ReadWritePaths %q does not include the data folder /var/lib/switchd", u.last("Service", "ReadWritePaths"))
	}
	stop, err := time.ParseDuration(u.last("Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if stop <= cfg.DrainTimeout {
		t.Errorf("TimeoutStopSec %v <= drain_timeout %v: systemd would SIGKILL a draining switch", stop, cfg.DrainTimeout)
	}
	nofile, err := strconv.Atoi(u.last("Service", "LimitNOFILE"))
	if err != nil {
		t.Fatalf("LimitNOFILE: %v", err)
	}
	for _, l := range cfg.Listeners {
		if nofile < 2*l.MaxConnections {
			t.Errorf("LimitNOFILE %d leaves no headroom over listener %s's max_connections %d", nofile, l.Name, l.MaxConnections)
		}
	}
	if u.last("Install", "WantedBy") == "" {
		t.Error("[Install] WantedBy is missing: systemctl enable would do nothing")
	}
	verifyUnit(t, string(raw))
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose
// switchd path is an existing program (verify checks that it exists); any
// complaint (an unknown or misspelt key, a bad value) fails the test.
func verifyUnit(t *testing.T, raw string) {
	t.Helper()
	// Debian's base system has systemd; .ci/run does not install it (that
	// would upgrade the init system of the CI machine), so its absence is
	// noted, not a failure.
	analyze, ok := hosttool.Lookup("systemd-analyze")
	if !ok {
		t.Log("systemd-analyze not installed (Debian package systemd): unit syntax not verified")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "switchd.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(raw, "/usr/local/bin/switchd", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify switchd.service: %v\n%s", err, out)
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// buildBinaries builds the named commands into a temporary folder.
func buildBinaries(t *testing.T, names ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the processes with")
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "github.com/kbpay/switch/cmd/"+n)
	}
	cmd := exec.Command(goBin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// A smoke run of the harness: the direct and relay paths with 1 s phases
// against real issuersim and benchrelay processes, two rounds combined into
// medians, the relay compared with a second build (the same one here)
// and with the direct path round by round, the paths of each load
// measured back to back, every figure present and every process stopped.
// (The switch paths run in `make bench`.)
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBinaries(t, "issuersim", "benchrelay")
	var log bytes.Buffer
	res, err := Run(context.Background(), Options{
		Bin: bin, WorkDir: t.TempDir(), Duration: time.Second, Warmup: 500 * time.Millisecond,
		Paths: []string{PathDirect, PathRelay}, Loads: []Load{{Name: "closed-16", Closed: 16}, {Name: "open-200", Rate: 200}},
		Terminals: 8, Cards: 20, Log: &log, Rounds: 2, Compare: bin,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	// direct, relay and relay@compare (the same build again) at two loads.
	if len(res.Phases) != 6 || len(res.RoundPhases) != 12 {
		t.Fatalf("%d phases and %d round phases, want 6 medians of 2 rounds", len(res.Phases), len(res.RoundPhases))
	}
	if len(res.Compare) != 2 {
		t.Fatalf("compare rows %+v, want the relay at both loads", res.Compare)
	}
	for _, c := range res.Compare {
		if c.Path != PathRelay+CompareSuffix || c.Over != PathRelay || c.TPSRatio <= 0 || c.CPURatio <= 0 || len(c.TPSRounds) != 2 || len(c.CPURounds) != 2 {
			t.Errorf("compare row %+v: want the relay's TPS and CPU ratios in both rounds", c)
		}
	}
	if len(res.Pairs) != 2 {
		t.Fatalf("pairs %+v, want the relay over the direct path at both loads", res.Pairs)
	}
	for _, c := range res.Pairs {
		if c.Path != PathRelay || c.Over != PathDirect || len(c.TPSRounds) != 2 || c.TPSRatio <= 0 || c.CPURatio != 0 {
			t.Errorf("pair %+v: want the relay's TPS over the direct path's in both rounds, no CPU", c)
		}
	}
	for _, p := range res.Phases {
		if p.Rounds != 2 || len(p.TPSRange) != 2 {
			t.Errorf("%s %s: %d rounds, TPS range %v", p.Path, p.Load, p.Rounds, p.TPSRange)
		}
		if p.Answered == 0 || p.Unanswered != 0 || p.Approved != p.Answered || p.P99 <= 0 {
			t.Errorf("%s %s: answered %d approved %d unanswered %d p99 %.2f", p.Path, p.Load, p.Answered, p.Approved, p.Unanswered, p.P99)
		}
		if strings.HasPrefix(p.Path, PathRelay) && (p.CPUSeconds <= 0 && p.PeakRSSMiB <= 0 || p.TPSRatio == 0) {
			t.Errorf("relay %s: CPU %.3f s, peak RSS %.1f MiB, TPS ratio %.2f: want them measured", p.Load, p.CPUSeconds, p.PeakRSSMiB, p.TPSRatio)
		}
	}
	// Each load's phases ran back to back across the paths: in each
	// round, every closed-16 phase began before any open-200 one.
	for round := 1; round <= 2; round++ {
		var last16, first200 time.Time
		for _, p := range res.RoundPhases {
			switch {
			case p.Round != round:
			case p.Load == "closed-16" && p.StartedAt.After(last16):
				last16 = p.StartedAt
			case p.Load == "open-200" && (first200.IsZero() || p.StartedAt.Before(first200)):
				first200 = p.StartedAt
			}
		}
		if last16.IsZero() || !last16.Before(first200) {
			t.Errorf("round %d: last closed-16 phase began %v, first open-200 %v: want the loads one after the other", round, last16, first200)
		}
	}
	var table, js bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| relay") || !strings.Contains(table.String(), "relay over direct") {
		t.Errorf("table lacks the relay rows:\n%s", table.String())
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Phases) != 6 || len(back.RoundPhases) != 12 || len(back.Compare) != 2 || len(back.Pairs) != 2 {
		t.Fatalf("results JSON does not read back: %v", err)
	}
}

// The durable relay path runs benchrelay with its log in the path's
// folder: benchrelay reports on exit at least two frames made durable
// for each answered transaction (warm-ups included).
func TestDurableRelayPath(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBinaries(t, "issuersim", "benchrelay")
	var log bytes.Buffer
	work := t.TempDir()
	res, err := Run(context.Background(), Options{
		Bin: bin, WorkDir: work, Duration: time.Second, Warmup: 500 * time.Millisecond,
		Paths: []string{PathDirect, PathDurableRelay}, Loads: []Load{{Name: "closed-16", Closed: 16}},
		Terminals: 8, Cards: 20, Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.Pairs) != 1 || res.Pairs[0].Path != PathDurableRelay || res.Pairs[0].Over != PathDirect || res.Pairs[0].TPSRatio <= 0 {
		t.Errorf("pairs %+v, want the durable relay over the direct path", res.Pairs)
	}
	var answered int64
	for _, p := range res.Phases {
		if p.Answered == 0 || p.Unanswered != 0 || p.Approved != p.Answered {
			t.Errorf("%s: answered %d approved %d unanswered %d", p.Path, p.Answered, p.Approved, p.Unanswered)
		}
		if p.Path == PathDurableRelay {
			answered = p.Answered
		}
	}
	out, err := os.ReadFile(filepath.Join(work, PathDurableRelay, "benchrelay.log"))
	if err != nil {
		t.Fatal(err)
	}
	var frames, groups int64
	report, _ := strings.CutPrefix(string(out[max(0, bytes.LastIndex(out, []byte("benchrelay: "))):]), "benchrelay: ")
	if _, err := fmt.Sscanf(report, "%d frames made durable in %d groups", &frames, &groups); err != nil ||
		frames < 2*answered || groups == 0 {
		t.Errorf("benchrelay's report %q: %d frames in %d groups, want at least %d frames", out, frames, groups, 2*answered)
	}
}

func TestRunRefusesUnknownProfileLoad(t *testing.T) {
	_, err := Run(context.Background(), Options{Bin: os.TempDir(), Paths: []string{PathDirect}, ProfileLoads: []string{"closed-65"}})
	if err == nil || !strings.Contains(err.Error(), "unknown profile load") {
		t.Fatalf("got %v, want an unknown-profile-load error", err)
	}
	if got, want := profileFile("p", PathPAN, "open-1000"), filepath.Join("p", PathPAN+"-open-1000-cpu.pprof"); got != want {
		t.Errorf("profile file %s, want %s", got, want)
	}
}

func TestRunRefusesUnknownPath(t *testing.T) {
	_, err := Run(context.Background(), Options{Bin: os.TempDir(), Paths: []string{"nowhere"}})
	if err == nil || !strings.Contains(err.Error(), "unknown path") {
		t.Fatalf("got %v, want an unknown-path error", err)
	}
}

// TestExtraPathsFollowTheTokenPath: switch-token-vault and
// switch-token-cold come right after switch-token (so each load measures
// them next to it) when their options ask for them (and only with
// switch-token in the run); each is a known path with its own phase
// number.
func TestExtraPathsFollowTheTokenPath(t *testing.T) {
	for _, tc := range []struct {
		name        string
		paths       []string
		vault, cold int
		want        []string
	}{
		{"neither", []string{PathPAN, PathToken, PathNoFsync}, 0, 0, []string{PathPAN, PathToken, PathNoFsync}},
		{"cold", []string{PathPAN, PathToken, PathNoFsync}, 0, 1000, []string{PathPAN, PathToken, PathTokenCold, PathNoFsync}},
		{"both", []string{PathToken, PathNoFsync}, 10, 1000, []string{PathToken, PathTokenVault, PathTokenCold, PathNoFsync}},
		{"no token path", []string{PathPAN}, 10, 1000, []string{PathPAN}},
		{"asked for by name", []string{PathToken, PathTokenCold}, 0, 1000, []string{PathToken, PathTokenCold}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Options{Paths: tc.paths, Vault: tc.vault, ColdTokens: tc.cold}.withDefaults().Paths
			if !slices.Equal(got, tc.want) {
				t.Errorf("paths %v, want %v", got, tc.want)
			}
		})
	}
	seen := map[int]string{}
	for _, p := range append(slices.Clone(AllPaths), extraPaths...) {
		if !knownPath(p) {
			t.Errorf("%s is not a known path", p)
		}
		if i := pathIndex(p); i == 0 || seen[i] != "" {
			t.Errorf("%s has phase number %d (also %q's)", p, i, seen[i])
		} else {
			seen[i] = p
		}
	}
}

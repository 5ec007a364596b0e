package fault

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kbpay/switch/internal/raceflag"
)

// switchdBin is the switchd binary built once for every test in the package.
var switchdBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the tests skip themselves
	}
	dir, err := os.MkdirTemp("", "fault-switchd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault: temp dir:", err)
		os.Exit(1)
	}
	switchdBin = filepath.Join(dir, "switchd")
	if err := buildSwitchd(switchdBin); err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildSwitchd builds cmd/switchd into out, with the race detector when
// the tests run with it.
func buildSwitchd(out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("finding the go tool: %w", err)
	}
	args := []string{"build", "-o", out}
	if raceflag.Enabled { // the tests run under the race detector: so does switchd
		args = append(args, "-race")
	}
	args = append(args, "github.com/kbpay/switch/cmd/switchd")
	cmd := exec.Command(goTool, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building switchd: %w\n%s", err, b)
	}
	return nil
}

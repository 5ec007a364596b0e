package fault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/terminal"
)

// TestSecondSwitchdOnOneDataFolder starts a second switchd on the data
// folder of a running one, with ports of its own so that nothing but the
// folder lock can stop it: it must exit non-zero at once naming the folder
// and the first one's PID, and the first must go on serving. (Before the
// lock, the second ran recovery over the first's journal and reversed a
// sale the first had approved.)
func TestSecondSwitchdOnOneDataFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs switchd twice")
	}
	e := startEnv(t, 1_000_000)
	cfg, err := os.ReadFile(e.sw.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	own := strings.NewReplacer(e.sw.termAddr, testnet.FreeAddr(t), e.sw.adminAddr, testnet.FreeAddr(t)).Replace(string(cfg))
	secondCfg := filepath.Join(t.TempDir(), "second.yaml")
	if err := os.WriteFile(secondCfg, []byte(own), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, switchdBin, "--config", secondCfg)
	second.Env = switchdEnv()
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	err = second.Run()
	if ctx.Err() != nil {
		t.Fatalf("a second switchd on the data folder in use was still running after 20 s; its output:\n%s", out.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second switchd: %v, want a non-zero exit; its output:\n%s", err, out.String())
	}
	e.sw.mu.Lock()
	pid := e.sw.cmd.Process.Pid
	e.sw.mu.Unlock()
	want := fmt.Sprintf("data folder %s is in use by another switchd (pid %d); each instance needs its own data_dir", e.sw.dataDir, pid)
	if !strings.Contains(out.String(), want) {
		t.Fatalf("second switchd's output does not say %q:\n%s", want, out.String())
	}

	term := e.sw.terminal(t)
	if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: "9410000000000005", Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("the first switchd stopped serving: %v %v", res.ResponseCode, err)
	}
	if err := e.sw.failure(); err != nil {
		t.Fatal(err)
	}
}

// Package demo runs the shipped scenario suite the way a new user does:
// real switchd, issuersim and termsim binaries, the switch configured
// only by overriding the built-in items' addresses (everything else, the
// prepaid route's refunds and the demo PIN keys included, comes from the
// per-item defaults), `termsim run simulator/scenarios` with no --vars.
// Every port is a free one, so it runs beside a live demo.
package demo

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/internal/testnet"
)

// build compiles the commands into dir.
func build(t *testing.T, dir string, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "github.com/kbpay/switch/cmd/"+c).CombinedOutput()
		if err != nil {
			t.Fatalf("building %s: %v\n%s", c, err, out)
		}
	}
}

// process is a started binary; stop sends SIGTERM and waits.
type process struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func start(t *testing.T, dir, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, bin), args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: &log}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, log.String())
		}
	})
	return p
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s exited with %v", p.cmd.Path, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", p.cmd.Path)
	}
}

// cleanEnv is the environment without variables that would leave
// development mode or point termsim elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCH_") {
			env = append(env, kv)
		}
	}
	return env
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	testnet.EventuallyOK(t, 30*time.Second, url+" ready", func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func TestShippedSuiteAgainstDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	dir := t.TempDir()
	build(t, dir, "switchd", "issuersim", "termsim")
	issuers := map[string]string{"card-a": testnet.FreeAddr(t), "card-b": testnet.FreeAddr(t), "prepaid": testnet.FreeAddr(t)}
	issuerAdmin, switchAdmin, terminalAddr, vanAddr := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)

	var iss strings.Builder
	iss.WriteString("issuers:\n")
	for _, x := range []struct{ name, bin string }{{"card-a", "9410"}, {"card-b", "9420"}, {"prepaid", "9430"}} {
		fmt.Fprintf(&iss, "  - {name: %s, addr: %q, bins: [%q], zpk: %s, pin: %q, reversals: %v}\n",
			x.name, issuers[x.name], x.bin, devkeys.ZPKHex, devkeys.DemoPIN, x.name != "prepaid")
	}
	// Only addresses: the built-in items keep everything else.
	sw := fmt.Sprintf(`admin: {addr: %q}
listeners:
  - {name: terminal, addr: %q}
  - {name: van, addr: %q}
routes:
  - {name: card-a, addrs: [%q]}
  - {name: card-b, addrs: [%q]}
  - {name: prepaid, addrs: [%q]}
`, switchAdmin, terminalAddr, vanAddr, issuers["card-a"], issuers["card-b"], issuers["prepaid"])
	for name, body := range map[string]string{"issuersim.yaml": iss.String(), "switchd.yaml": sw} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	issuersim := start(t, dir, "issuersim", "--config", "issuersim.yaml", "--admin", issuerAdmin)
	check, err := exec.Command(filepath.Join(dir, "switchd"), "-t", "--config", filepath.Join(dir, "switchd.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(check), "configuration OK") {
		t.Fatalf("switchd -t: %v\n%s", err, check)
	}
	switchd := start(t, dir, "switchd", "--config", "switchd.yaml")
	waitReady(t, "http://"+switchAdmin+"/readyz")

	suite, err := filepath.Abs("../../simulator/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	run := exec.Command(filepath.Join(dir, "termsim"), "run", suite, "--switch", terminalAddr, "--admin", switchAdmin,
		"--issuer-admin", issuerAdmin, "--var", "van_switch="+vanAddr, "--var", "keyed_switch="+testnet.FreeAddr(t))
	run.Env = cleanEnv()
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("termsim run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " passed, 0 failed, 3 skipped") ||
		!strings.Contains(string(out), "requires keyed_switch (nothing listens at") ||
		!strings.Contains(string(out), "variables from "+filepath.Join(suite, "demo-cards.env")) {
		t.Errorf("termsim run:\n%s", out)
	}

	switchd.stop(t)
	issuersim.stop(t)
	_, afterSignal, _ := strings.Cut(switchd.log.String(), "signal received")
	for _, line := range strings.Split(afterSignal, "\n") {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			t.Errorf("switchd shutdown logged: %s", line)
		}
	}
}

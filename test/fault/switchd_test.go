package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
)

// adminToken is the provisioning API's documented demo bearer token, which
// switchd uses when its token variable is unset (as here).
const adminToken = "demo-admin-token"

// switchd is the switch daemon as a child process. One configuration and
// data folder serve every (re)start.
type switchd struct {
	t        *testing.T
	cfgPath  string
	dataDir  string
	logPath  string
	termAddr string
	// attackAddr is a second, plain terminal listener ("attacker") from
	// which identity attacks on the terminal listener's sales are sent.
	attackAddr string
	adminAddr  string
	http       *http.Client

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has been reaped
	stopped bool          // we stopped or killed it on purpose
	starts  int
	// unexpected records a process that ended without being asked to.
	unexpected error
}

// routeSpec is one issuer route in the configuration.
type routeSpec struct {
	name, bin  string
	issuer     *issuer.Issuer
	refundOnly bool // give_back: refund
}

// switchdOption adds to a switchd's configuration: hsm lines inside its
// hsm block (indented), top YAML at the top level.
type switchdOption struct{ hsm, top string }

// newSwitchd writes the configuration into a fresh data folder; start runs
// the process.
func newSwitchd(t *testing.T, routes []routeSpec, opts ...switchdOption) *switchd {
	t.Helper()
	dir := t.TempDir()
	// switchd is another process configured by a file: its addresses come
	// from testnet.FreeAddr, whose race (another process taking the port
	// first) remains and shows as a failed start.
	s := &switchd{
		t:          t,
		cfgPath:    filepath.Join(dir, "switchd.yaml"),
		dataDir:    filepath.Join(dir, "data"),
		logPath:    filepath.Join(dir, "switchd.log"),
		termAddr:   testnet.FreeAddr(t),
		attackAddr: testnet.FreeAddr(t),
		adminAddr:  testnet.FreeAddr(t),
		http:       &http.Client{Timeout: 2 * time.Second},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %q\n", s.dataDir)
	fmt.Fprintf(&b, "log:\n  level: warn\n")
	fmt.Fprintf(&b, "drain_timeout: 5s\n")
	fmt.Fprintf(&b, "admin:\n  addr: %q\n  bearer_token_env: FAULT_TEST_ADMIN_TOKEN_UNSET\n", s.adminAddr)
	// An unset variable: the development master key is generated into (and
	// on restart read back from) the data folder.
	fmt.Fprintf(&b, "hsm:\n  master_key_env: FAULT_TEST_MASTER_KEY_UNSET\n")
	for _, o := range opts {
		b.WriteString(o.hsm)
	}
	for _, o := range opts {
		b.WriteString(o.top)
	}
	fmt.Fprintf(&b, "listeners:\n  - name: terminal\n    addr: %q\n  - name: attacker\n    addr: %q\n", s.termAddr, s.attackAddr)
	b.WriteString("routes:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "  - name: %s\n    bins: [%q]\n    addrs: [%q]\n", r.name, r.bin, r.issuer.Addr())
		b.WriteString("    timeout: 500ms\n    reconnect_wait: 100ms\n    max_reconnect_wait: 500ms\n")
		// Time compressed like the waits above: a 1.5 s hang opens the
		// route's one circuit breaker (every sale 91 at once); the default
		// 10 s open would outlast the fault by far and starve the marks.
		b.WriteString("    breaker: {open_for: 1s}\n")
		if r.refundOnly {
			b.WriteString("    give_back: refund\n")
		}
	}
	// retry_max keeps the SAF back-off (1 s, 2 s, 4 s, ...) short so the
	// queue drains within the test's bounds after the faults.
	b.WriteString("journal:\n  saf_interval: 100ms\n  retry_max: 2s\n")
	if err := os.WriteFile(s.cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("switchd configuration:\n%s", b.String())
			t.Logf("switchd output (%s):\n%s", s.logPath, s.logTail(32<<10))
		}
	})
	return s
}

// env is the process environment without the variables that would
// override the test's key and token choices.
func switchdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SWITCH_MASTER_KEY=") || strings.HasPrefix(kv, "SWITCH_ADMIN_TOKEN=") ||
			strings.HasPrefix(kv, "FAULT_TEST_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start runs switchd (its output appended to the log file).
func (s *switchd) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts++
	fmt.Fprintf(logf, "---- switchd start #%d at %s ----\n", s.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(switchdBin, "--config", s.cfgPath)
	cmd.Env = switchdEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		s.t.Fatalf("starting switchd: %v", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.stopped = cmd, exited, false
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		s.mu.Lock()
		if !s.stopped && s.unexpected == nil {
			s.unexpected = fmt.Errorf("switchd exited unexpectedly: %v", err)
		}
		s.mu.Unlock()
		close(exited)
	}()
}

// terminal dials s's terminal listener as the default terminal (5 s
// timeout); the connection is closed when t ends.
func (s *switchd) terminal(t *testing.T) *terminal.Client {
	t.Helper()
	opts := terminal.DefaultOptions()
	opts.Addr, opts.Timeout = s.termAddr, 5*time.Second
	term, err := terminal.Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = term.Close() })
	return term
}

// failure reports a switchd that ended on its own.
func (s *switchd) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unexpected
}

// signal sends sig to the running process and waits (up to wait) until
// it is reaped; after wait it is killed.
func (s *switchd) signal(sig syscall.Signal, wait time.Duration) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	if cmd == nil {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// kill ends switchd with SIGKILL: no drain, no sign-off, no journal flush.
func (s *switchd) kill() { s.signal(syscall.SIGKILL, 10*time.Second) }

// stop drains switchd with SIGTERM (killed after 15 s).
func (s *switchd) stop() { s.signal(syscall.SIGTERM, 15*time.Second) }

// readiness is /readyz's body.
type readiness struct {
	Ready  bool `json:"ready"`
	Routes []struct {
		Name    string `json:"name"`
		LinksUp int    `json:"links_up"`
	} `json:"routes"`
}

// waitReady polls /readyz until the switch is ready and every named route
// has a signed-on link.
func (s *switchd) waitReady(d time.Duration, routes ...string) error {
	deadline := time.Now().Add(d)
	var last string
	for {
		if err := s.failure(); err != nil {
			return err
		}
		r, err := s.readyz()
		if err == nil && r.Ready && allUp(r, routes) {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%+v", r)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("switchd not ready with links to %v within %v (last: %s)", routes, d, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allUp(r readiness, routes []string) bool {
	for _, want := range routes {
		ok := false
		for _, got := range r.Routes {
			if got.Name == want && got.LinksUp >= 1 {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *switchd) readyz() (readiness, error) {
	var r readiness
	resp, err := s.http.Get("http://" + s.adminAddr + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("decoding /readyz: %w", err)
	}
	return r, nil
}

// safPending returns GET /v1/saf (the pending reversals) as raw JSON.
func (s *switchd) safPending(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.adminAddr+"/v1/saf", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /v1/saf: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return string(bytes.TrimSpace(b)), nil
}

// logTail returns the last n bytes of switchd's output.
func (s *switchd) logTail(n int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return err.Error()
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// raceReports returns the race detector's reports in switchd's output.
func (s *switchd) raceReports() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	i := bytes.Index(b, []byte("WARNING: DATA RACE"))
	if i < 0 {
		return ""
	}
	return string(b[i:min(len(b), i+16<<10)])
}

// openStore opens the store of this switchd's configuration (its journal
// and vault), as switchd settle does; read it once switchd has stopped.
func (s *switchd) openStore() (store.Store, error) {
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		return nil, err
	}
	return storage.Open(cfg)
}

package payswitch_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/datadir"
)

var errInjected = errors.New("injected start-up fault")

// startupConfig is a switch with a terminal listener and the admin
// endpoint on fixed free addresses (so a leftover bind shows), routes to
// an address where no issuer answers.
func startupConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Admin.Addr = freeAddr(t)
	cfg.Listeners = []config.Listener{{Name: "terminal", Addr: freeAddr(t)}}
	for i := range cfg.Routes {
		cfg.Routes[i].Addrs = []string{freeAddr(t)}
	}
	cfg, err := config.Parse(mustYAML(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openFDs counts this process's open file descriptors (files, locks,
// sockets).
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(fds)
}

// startAndStop starts a switch on cfg (binding its addresses) and drains
// it: a start that failed earlier left nothing in its way.
func startAndStop(t *testing.T, cfg config.Config) {
	t.Helper()
	sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New after a failed start: %v", err)
	}
	if err := sw.Start(context.Background()); err != nil {
		_ = sw.Shutdown(context.Background())
		t.Fatalf("Start after a failed start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// checkNothingLeftOpen: the data folders lock again, the process holds no
// more descriptors than before the start (store files, key store, locks,
// sockets), and the same configuration starts and binds.
func checkNothingLeftOpen(t *testing.T, cfg config.Config, fdsBefore int) {
	t.Helper()
	lock, err := datadir.Acquire(cfg.DataDir, filepath.Dir(cfg.Journal.Path), filepath.Dir(cfg.Vault.Path))
	if err != nil {
		t.Fatalf("data folder still locked: %v", err)
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) > fdsBefore {
		if time.Now().After(deadline) {
			t.Fatalf("%d file descriptors open, %d before the start", openFDs(t), fdsBefore)
		}
		time.Sleep(20 * time.Millisecond)
	}
	startAndStop(t, cfg)
}

// TestFailedStartClosesEverything makes each step of New fail in turn:
// every time, New returns the step's error, what the earlier steps opened
// is closed again (data folder unlocked, store and HSM closed, no
// descriptor left), no metric it registered stays on the registry, and a
// switch on the same configuration then starts and binds its addresses.
func TestFailedStartClosesEverything(t *testing.T) {
	cfg := startupConfig(t)
	startAndStop(t, cfg) // creates the data folder, key store and the runtime's own descriptors
	fdsBefore := openFDs(t)

	var steps []string
	sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry(), payswitch.WithStartFault(func(step string) error {
		steps = append(steps, step)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lock the data folder", "open the store", "open the HSMs and the token service", "build the admin endpoint"} {
		if !slices.Contains(steps, want) {
			t.Fatalf("steps %q lack %q", steps, want)
		}
	}

	for n, failing := range steps {
		t.Run(failing, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			step := 0
			_, err := payswitch.New(cfg, zap.NewNop(), reg, payswitch.WithStartFault(func(string) error {
				if step++; step == n+1 {
					return errInjected
				}
				return nil
			}))
			if !errors.Is(err, errInjected) {
				t.Fatalf("New failing at step %d (%s): %v", n+1, failing, err)
			}
			fams, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fams {
				t.Errorf("metric %s left registered", f.GetName())
			}
			checkNothingLeftOpen(t, cfg, fdsBefore)
		})
	}
}

// TestFailedStartThenShutdownClosesEverything: Start failing (the admin
// address is taken) and the Shutdown that follows leave nothing open.
func TestFailedStartThenShutdownClosesEverything(t *testing.T) {
	cfg := startupConfig(t)
	startAndStop(t, cfg)
	taken, err := net.Listen("tcp", cfg.Admin.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fdsBefore := openFDs(t)
	sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err == nil {
		t.Fatal("Start bound a taken admin address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sw.Shutdown(ctx)
	if err := taken.Close(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeftOpen(t, cfg, fdsBefore-1)
}

// TestNotReadyUntilEveryListenerAccepts: /readyz is served from the admin
// endpoint, which binds before the terminal listeners; a switch whose
// listener could not bind (or has not bound yet) must not report ready, or
// a load balancer sends terminals to a port nobody accepts on.
func TestNotReadyUntilEveryListenerAccepts(t *testing.T) {
	cfg := startupConfig(t)
	taken, err := net.Listen("tcp", cfg.Listeners[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sw.Shutdown(ctx)
	}()
	if err := sw.Start(context.Background()); err == nil {
		t.Fatal("Start bound a taken listener address")
	}
	resp, err := http.Get("http://" + sw.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatalf("admin endpoint: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"accepting":false`) {
		t.Fatalf("/readyz with the terminal listener unbound: %d %s, want 503 with accepting false", resp.StatusCode, body)
	}
}

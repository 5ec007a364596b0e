package payswitch_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

// loadRun keeps terminals buying on some cards until stopped, and counts
// every answer that is not an approval.
type loadRun struct {
	approved, failed atomic.Int64
	mu               sync.Mutex
	failures         []string
	stop             chan struct{}
	wg               sync.WaitGroup
}

func startLoad(t *testing.T, h *harness, pans []string, perPAN int) *loadRun {
	t.Helper()
	r := &loadRun{stop: make(chan struct{})}
	for _, p := range pans {
		for range perPAN {
			term := h.terminal()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				for {
					select {
					case <-r.stop:
						return
					default:
					}
					res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: p, Amount: 100})
					if err == nil && res.ResponseCode == "00" {
						r.approved.Add(1)
						continue
					}
					r.failed.Add(1)
					r.mu.Lock()
					r.failures = append(r.failures, p[:4]+": "+res.ResponseCode+" "+errString(err))
					r.mu.Unlock()
				}
			}()
		}
	}
	return r
}

// waitMore waits until n more approvals than now were counted.
func (r *loadRun) waitMore(t *testing.T, n int64) {
	t.Helper()
	target := r.approved.Load() + n
	waitFor(t, 20*time.Second, "more approvals under load", func() bool { return r.approved.Load() >= target })
}

func (r *loadRun) finish(t *testing.T) {
	t.Helper()
	close(r.stop)
	r.wg.Wait()
	if r.failed.Load() > 0 {
		t.Fatalf("%d of %d transactions failed under reload: %v", r.failed.Load(), r.failed.Load()+r.approved.Load(), r.failures[:min(5, len(r.failures))])
	}
}

// reparse applies the defaults to c as loading it from a file does.
func reparse(t *testing.T, c config.Config) config.Config {
	t.Helper()
	c, err := config.Parse(mustYAML(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeConfig(t *testing.T, path string, c config.Config) {
	t.Helper()
	if err := os.WriteFile(path, mustYAML(t, c), 0o600); err != nil {
		t.Fatal(err)
	}
}

// adminReload is POST /v1/reload.
func (h *harness) adminReload(t *testing.T) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.sw.AdminAddr()+"/v1/reload", nil)
	req.Header.Set("Authorization", "Bearer "+config.DemoAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestReloadUnderLoadAddsChangesAndRemovesRoutes: while terminals buy
// on card-a and card-b without pause, reloads (POST /v1/reload and
// Reload) add a route, give card-a a second endpoint and then take the
// first away, relink card-b (another timeout), remove the added route
// and refuse a bad file: no transaction fails, none is approved twice.
func TestReloadUnderLoadAddsChangesAndRemovesRoutes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchd.yaml")
	h := newHarnessWith(t, []payswitch.Option{payswitch.WithConfigFile(file)}, "")
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") && h.linksUp("card-b") })
	a2 := startIssuer(t, "card-a", "127.0.0.1:0", "9410")
	cardC := startIssuer(t, "card-c", "127.0.0.1:0", "9450")
	cfg := h.cfg
	cfg.Routes = slices.Clone(h.cfg.Routes)
	load := startLoad(t, h, []string{"9410000000000005", "9420000000000003"}, 3)
	load.waitMore(t, 30)

	// 1. Add card-c, through the admin API (the SIGHUP path).
	cfg.Routes = append(cfg.Routes, config.IssuerRoute{Name: "card-c", BINs: []string{"9450"}, Addrs: []string{cardC.Addr()},
		Timeout: routeTime, PIN: &config.PINKey{Key: "zpk-demo"}})
	writeConfig(t, file, cfg)
	if code, body := h.adminReload(t); code != http.StatusOK || body["applied"] != true {
		t.Fatalf("reload adding card-c: %d %v", code, body)
	}
	term := h.terminal()
	if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: "9450000000000006", Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("purchase on the added route: %v %s", err, res.ResponseCode)
	}
	load.waitMore(t, 30)

	// 2. card-a gains a second endpoint, then loses its first.
	a1 := h.issuers["card-a"].Addr()
	cfg.Routes[0].Addrs = nil
	cfg.Routes[0].Endpoints = []config.Endpoint{{Addr: a1}, {Addr: a2.Addr()}}
	cfg.Routes[0].Policy = config.PolicyRoundRobin
	if sum, err := h.sw.Reload(context.Background(), reparse(t, cfg)); err != nil || !slices.Contains(sum.Endpoints, "card-a") {
		t.Fatalf("adding an endpoint: %v %+v", err, sum)
	}
	load.waitMore(t, 30)
	waitFor(t, 10*time.Second, "the second endpoint to take traffic", func() bool { return len(a2.Approvals()) > 0 })
	cfg.Routes[0].Endpoints = []config.Endpoint{{Addr: a2.Addr()}}
	if _, err := h.sw.Reload(context.Background(), reparse(t, cfg)); err != nil {
		t.Fatalf("removing an endpoint: %v", err)
	}
	// A sale that took the first endpoint just before the reload is
	// answered there; then the endpoint closes and gets nothing more.
	waitFor(t, 20*time.Second, "the removed endpoint's link closed", func() bool { return h.issuers["card-a"].Connections() == 0 })
	before := len(h.issuers["card-a"].Approvals())
	load.waitMore(t, 30)
	if after := len(h.issuers["card-a"].Approvals()); after != before {
		t.Fatalf("the removed endpoint approved %d more", after-before)
	}

	// 3. card-b relinks: another timeout makes a new link that takes over.
	cfg.Routes[1].Timeout = routeTime + time.Second
	if sum, err := h.sw.Reload(context.Background(), reparse(t, cfg)); err != nil || !slices.Contains(sum.Replaced, "card-b") {
		t.Fatalf("relinking card-b: %v %+v", err, sum)
	}
	load.waitMore(t, 30)

	// 4. A bad file is refused whole; the running routes stay.
	writeConfig(t, file, cfg)
	if err := os.WriteFile(file, []byte("routes: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := h.adminReload(t); code != http.StatusUnprocessableEntity || !strings.Contains(toString(body["error"]), "refused") {
		t.Fatalf("bad file: %d %v", code, body)
	}
	if _, err := h.sw.Reload(context.Background(), func() config.Config { c := reparse(t, cfg); c.InstanceID++; return c }()); !errors.Is(err, payswitch.ErrReloadRefused) {
		t.Fatalf("changing instance_id: %v", err)
	}

	// 5. Remove card-c: its cards no longer route; the others never noticed.
	cfg.Routes = cfg.Routes[:2]
	if sum, err := h.sw.Reload(context.Background(), reparse(t, cfg)); err != nil || !slices.Contains(sum.Removed, "card-c") {
		t.Fatalf("removing card-c: %v %+v", err, sum)
	}
	if res, _ := term.Purchase(context.Background(), terminal.Purchase{PAN: "9450000000000006", Amount: 100}); res.ResponseCode == "00" {
		t.Fatal("a removed route still approves")
	}
	load.waitMore(t, 30)
	load.finish(t)
	checkApprovedOnce(t, load.approved.Load()+1, h.issuers["card-a"], a2, h.issuers["card-b"], cardC)

	m := h.adminGet(t, "/metrics")
	for _, want := range []string{`payswitch_config_reloads_total{result="applied"} 5`, `payswitch_config_reloads_total{result="refused"} 2`, "payswitch_config_last_reload_successful 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m, "reload"))
		}
	}
}

// checkApprovedOnce: the issuers approved want sales in all, each RRN once.
func checkApprovedOnce(t *testing.T, want int64, iss ...*issuer.Issuer) {
	t.Helper()
	seen := map[string]bool{}
	for _, is := range iss {
		for _, a := range is.Approvals() {
			if seen[a.RRN] {
				t.Fatalf("RRN %s approved twice", a.RRN)
			}
			seen[a.RRN] = true
		}
	}
	if int64(len(seen)) != want {
		t.Fatalf("issuers approved %d sales, terminals were answered 00 for %d", len(seen), want)
	}
}

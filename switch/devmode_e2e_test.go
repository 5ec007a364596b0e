package payswitch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/software"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

// Environment variables the production-mode tests set (t.Setenv) or leave
// empty; none of them is a real deployment's name.
const (
	testAdminTokenEnv = "DEVMODE_TEST_ADMIN_TOKEN"
	testMasterKeyEnv  = "DEVMODE_TEST_MASTER_KEY"
	testAdminToken    = "devmode-test-admin-token-0123456789"
)

// productionConfig is testConfig outside development mode: the master key
// and the admin token come from the environment (set here), and no
// listener or route names a demo key.
func productionConfig(t *testing.T) config.Config {
	t.Helper()
	c := testConfig(t)
	c.HSM.MasterKeyEnv = testMasterKeyEnv
	c.Admin.BearerTokenEnv = testAdminTokenEnv
	t.Setenv(testMasterKeyEnv, randomMasterKey(t))
	t.Setenv(testAdminTokenEnv, testAdminToken)
	c.Listeners = []config.Listener{{Name: "terminal", Addr: "127.0.0.1:0"}}
	c.Routes = []config.IssuerRoute{{Name: "card-a", BINs: []string{"9410"}, Addrs: []string{freeAddr(t)}}}
	return c
}

func randomMasterKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, software.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k)
}

// parseAndBuild parses c through YAML and builds (does not start) a switch;
// the switch is shut down when the test ends.
func parseAndBuild(t *testing.T, c config.Config) (*payswitch.Switch, config.Config, error) {
	t.Helper()
	c, err := config.Parse(mustYAML(t, c))
	if err != nil {
		t.Fatal(err)
	}
	sw, err := payswitch.New(c, zap.NewNop(), prometheus.NewRegistry())
	if err == nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = sw.Shutdown(ctx)
		})
	}
	return sw, c, err
}

func TestProductionModeRefusesToStart(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(t *testing.T, c *config.Config)
		wantErr string
	}{
		{"admin off loopback without a token", func(t *testing.T, c *config.Config) {
			c.Admin.Addr = "0.0.0.0:0"
			t.Setenv(testAdminTokenEnv, "")
		}, testAdminTokenEnv + " is unset"},
		{"admin off loopback without a master key", func(t *testing.T, c *config.Config) {
			c.Admin.Addr = "0.0.0.0:0"
			t.Setenv(testMasterKeyEnv, "")
		}, "no master key"},
		{"listener off loopback with the demo token", func(t *testing.T, c *config.Config) {
			c.Listeners[0].Addr = "0.0.0.0:0"
			t.Setenv(testAdminTokenEnv, config.DemoAdminToken)
		}, "public demo token"},
		{"real master key with a demo PIN key", func(t *testing.T, c *config.Config) {
			c.Listeners[0].PIN = &config.PINKey{Key: devkeys.TPK}
		}, "listener terminal uses PIN key tpk-demo, a public demo key"},
		{"real master key with a demo zone key", func(t *testing.T, c *config.Config) {
			c.Routes[0].PIN = &config.PINKey{Key: devkeys.ZPK}
		}, "route card-a uses PIN key zpk-demo, a public demo key"},
		{"real master key with a demo MAC key", func(t *testing.T, c *config.Config) {
			c.Listeners[0].MAC = &config.MACKey{Key: devkeys.MAC}
		}, "listener terminal uses MAC key mac-demo, a public demo key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := productionConfig(t)
			tt.mutate(t, &c)
			_, _, err := parseAndBuild(t, c)
			if err == nil {
				t.Fatalf("switch built; want a refusal naming %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not name %q", err, tt.wantErr)
			}
		})
	}
}

// TestRealMasterKeyImportsNoDemoKeys: with a master key in the environment
// the publicly known demo keys must not enter the HSM.
func TestRealMasterKeyImportsNoDemoKeys(t *testing.T) {
	c := productionConfig(t)
	sw, c, err := parseAndBuild(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mk, err := software.LoadMasterKey("", testMasterKeyEnv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := software.Open(software.Options{KeyStore: c.HSM.KeyStore, MasterKey: mk}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	keys, err := h.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	demo := map[string]bool{}
	for _, req := range devkeys.Imports() {
		demo[req.Label] = true
	}
	for _, k := range keys {
		if demo[k.Label] {
			t.Errorf("demo key %s (%s) imported under a real master key", k.Label, k.Usage)
		}
	}
}

// TestOffLoopbackAdminTakesOnlyTheConfiguredToken: an admin API bound to
// every interface starts with a configured token and refuses the demo one.
func TestOffLoopbackAdminTakesOnlyTheConfiguredToken(t *testing.T) {
	c := productionConfig(t)
	c.Admin.Addr = "0.0.0.0:0"
	sw, _, err := parseAndBuild(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(sw.AdminAddr())
	url := "http://127.0.0.1:" + port + "/v1/saf"
	for _, tc := range []struct {
		bearer string
		want   int
	}{{config.DemoAdminToken, http.StatusUnauthorized}, {testAdminToken + "x", http.StatusUnauthorized}, {testAdminToken, http.StatusOK}} {
		if got := adminGetStatus(t, &http.Client{Timeout: 10 * time.Second}, url, tc.bearer); got != tc.want {
			t.Errorf("bearer %q: status %d, want %d", tc.bearer, got, tc.want)
		}
	}
}

func adminGetStatus(t *testing.T, client *http.Client, url, bearer string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

package payswitch_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/switchd"
)

// TestSIGHUPReloadsTheConfigFile runs switchd's Main on a file, adds a
// route to the file, sends SIGHUP and sees the route in GET /v1/links;
// SIGTERM then drains it to exit 0.
func TestSIGHUPReloadsTheConfigFile(t *testing.T) {
	a, c := startIssuer(t, "card-a", "127.0.0.1:0", "9410"), startIssuer(t, "card-c", "127.0.0.1:0", "9450")
	cfg := testConfig(t)
	cfg.Admin.Addr = freeAddr(t) // Main takes only a file: testnet.FreeAddr's race remains
	cfg.Listeners = []config.Listener{{Name: "terminal", Addr: "127.0.0.1:0", PIN: &config.PINKey{Key: "tpk-demo"}}}
	cfg.Routes = []config.IssuerRoute{{Name: "card-a", BINs: []string{"9410"}, Addrs: []string{a.Addr()}, PIN: &config.PINKey{Key: "zpk-demo"}}}
	file := filepath.Join(t.TempDir(), "switchd.yaml")
	writeConfig(t, file, cfg)
	exit := make(chan int, 1)
	go func() { exit <- switchd.Main([]string{"--config", file}, io.Discard, io.Discard) }()
	links := func() string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+cfg.Admin.Addr+"/v1/links", nil)
		req.Header.Set("Authorization", "Bearer "+config.DemoAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor(t, 20*time.Second, "switchd up", func() bool { return strings.Contains(links(), `"route":"card-a"`) })
	cfg.Routes = append(cfg.Routes, config.IssuerRoute{Name: "card-c", BINs: []string{"9450"}, Addrs: []string{c.Addr()}, PIN: &config.PINKey{Key: "zpk-demo"}})
	writeConfig(t, file, cfg)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "card-c after SIGHUP", func() bool { return strings.Contains(links(), `"route":"card-c"`) })
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("switchd exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("switchd did not stop on SIGTERM")
	}
}

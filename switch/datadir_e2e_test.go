package payswitch_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/simulator/terminal"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

// TestSecondSwitchOnOneDataFolderIsRefused: a second switch on the data
// folder of a running one (or on its journal's or vault's folder) must not
// open the stores (its recovery would settle the live switch's in-flight
// sales); the first keeps serving.
func TestSecondSwitchOnOneDataFolderIsRefused(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("purchase before: %v %v", res.ResponseCode, err)
	}
	elsewhere := t.TempDir()
	tests := []struct {
		name, dir string
		mutate    func(*config.Config)
	}{
		{"same data_dir", h.cfg.DataDir, func(*config.Config) {}},
		{"own data_dir, same journal", h.cfg.DataDir, func(c *config.Config) {
			c.DataDir, c.Vault.Path = elsewhere, elsewhere+"/vault.db"
			c.HSM.MasterKeyFile, c.HSM.KeyStore = elsewhere+"/master.key", elsewhere+"/keystore.json"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := h.cfg
			cfg.Admin.Addr = "127.0.0.1:0"
			tt.mutate(&cfg)
			sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry())
			if err == nil {
				_ = sw.Shutdown(context.Background())
				t.Fatal("a second switch started on a data folder in use")
			}
			want := fmt.Sprintf("data folder %s is in use by another switchd (pid %d); each instance needs its own data_dir", tt.dir, os.Getpid())
			if err.Error() != want {
				t.Fatalf("err = %q, want %q", err, want)
			}
		})
	}
	if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("the first switch stopped serving: %v %v", res.ResponseCode, err)
	}
}

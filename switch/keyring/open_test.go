package keyring

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/switch/config"
)

// TestOpenImportsDemoKeysOnlyInDevelopmentMode checks Open on its
// own (New refuses demo labels outside development mode before it gets
// here): the default configuration names the demo keys, and only the
// development run may import them.
func TestOpenImportsDemoKeysOnlyInDevelopmentMode(t *testing.T) {
	const keyEnv = "DEVMODE_INTERNAL_TEST_MASTER_KEY"
	tests := []struct {
		name      string
		masterKey string // in keyEnv; "" leaves it unset
		wantDemo  bool
	}{
		{"development", "", true},
		{"real master key, demo labels configured", strings.Repeat("5a", 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(keyEnv, tt.masterKey)
			dir := t.TempDir()
			cfg := config.Default()
			cfg.DataDir = dir
			cfg.HSM.MasterKeyEnv = keyEnv
			cfg.HSM.KeyStore = filepath.Join(dir, "keystore.json")
			cfg.HSM.MasterKeyFile = filepath.Join(dir, "master.key")
			h, err := Open(context.Background(), cfg, zap.NewNop(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			defer h.Roles.Close()
			if h.Roles.PINMAC != h.Roles.Data {
				t.Errorf("one backend configured, two opened")
			}
			keys, err := h.Roles.PINMAC.(hsm.KeyManager).Keys(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, k := range keys {
				have[k.Label] = true
			}
			for _, req := range devkeys.Imports() {
				if have[req.Label] != tt.wantDemo {
					t.Errorf("demo key %s present: %v, want %v", req.Label, have[req.Label], tt.wantDemo)
				}
			}
		})
	}
}

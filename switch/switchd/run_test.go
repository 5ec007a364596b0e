package switchd_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/switch/switchd"
)

// TestCheckConfigReportsProductionGaps: `switchd -t` names what a switch
// outside development mode lacks, and exits non-zero.
func TestCheckConfigReportsProductionGaps(t *testing.T) {
	t.Setenv("DEVMODE_TEST_ADMIN_TOKEN", "")
	t.Setenv("DEVMODE_TEST_MASTER_KEY", "")
	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		wantCode int
		want     []string // substrings of the output
	}{
		{name: "built-in defaults", wantCode: 0, want: []string{"configuration OK", "development mode"}},
		{name: "admin on every interface", yaml: `
admin: {addr: "0.0.0.0:8580", bearer_token_env: DEVMODE_TEST_ADMIN_TOKEN}
hsm: {master_key_env: DEVMODE_TEST_MASTER_KEY}
`, wantCode: 1, want: []string{
			"admin.bearer_token_env DEVMODE_TEST_ADMIN_TOKEN is unset",
			"no master key",
			"switchd: warning: listener terminal has no terminal PIN key", // the demo keys are development defaults only
		}},
		{name: "production ready", yaml: `
admin: {addr: "0.0.0.0:8580", bearer_token_env: DEVMODE_TEST_ADMIN_TOKEN}
hsm: {master_key_env: DEVMODE_TEST_MASTER_KEY, key_store: KEYSTORE}
listeners: [{name: terminal, addr: "0.0.0.0:8583", pin: {key: tpk-acquirer}}]
routes: [{name: card-a, bins: ["9410"], addrs: ["10.0.0.1:9101"], pin: {key: zpk-card-a}}]
`, env: map[string]string{"DEVMODE_TEST_ADMIN_TOKEN": "a-long-random-token", "DEVMODE_TEST_MASTER_KEY": strings.Repeat("ab", 32)},
			wantCode: 0, want: []string{"configuration OK", "production mode"}},
		{name: "keys absent or of the wrong kind", yaml: `
admin: {addr: "0.0.0.0:8580", bearer_token_env: DEVMODE_TEST_ADMIN_TOKEN}
hsm: {master_key_env: DEVMODE_TEST_MASTER_KEY, key_store: KEYSTORE}
listeners: [{name: terminal, addr: "0.0.0.0:8583", pin: {key: tpk-acquirer}}, {name: van, addr: "0.0.0.0:8584", pin: {key: zpk-card-a, dukpt: true}}]
routes: [{name: card-a, bins: ["9410"], addrs: ["10.0.0.1:9101"], pin: {key: tpk-acquirer}}, {name: card-b, bins: ["9420"], addrs: ["10.0.0.1:9102"], pin: {key: zpk-missing}}, {name: card-c, bins: ["9430"], addrs: ["10.0.0.1:9103"], pin: {key: zpk-card-a, format: 4}}, {name: card-d, bins: ["9440"], addrs: ["10.0.0.1:9104"]}]
`, env: map[string]string{"DEVMODE_TEST_ADMIN_TOKEN": "a-long-random-token", "DEVMODE_TEST_MASTER_KEY": strings.Repeat("ab", 32)},
			wantCode: 1, want: []string{
				`listener van pin.key: HSM key "zpk-card-a" is a zpk key, want bdk`,
				`route card-a pin.key: HSM key "tpk-acquirer" is a tpk key, want zpk`,
				`route card-b pin.key: HSM has no key "zpk-missing"`,
				`route card-c pin.key: HSM key "zpk-card-a": format 4 needs a aes key`,
				"route card-d has no zone PIN key (pin.key) but listener terminal accepts PINs",
			}},
		{name: "unknown key, port out of range, duplicate address", yaml: `
listeners: [{name: terminal, addr: "127.0.0.1:99999", idle_timout: 1m}]
`, wantCode: 1, want: []string{`unknown key "idle_timout" in a listener (did you mean "idle_timeout"?)`}},
		{name: "port out of range, duplicate address", yaml: `
listeners: [{name: terminal, addr: "127.0.0.1:99999"}, {name: van, addr: "127.0.0.1:8580"}]
`, wantCode: 1, want: []string{`port 99999 outside 0..65535`, "address 127.0.0.1:8580 is used by both listener van and admin"}},
	}
	keyStore := testKeyStore(t, strings.Repeat("ab", 32))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := []string{"-t"}
			if tt.yaml != "" {
				path := filepath.Join(t.TempDir(), "switchd.yaml")
				if err := os.WriteFile(path, []byte(strings.ReplaceAll(tt.yaml, "KEYSTORE", keyStore)), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			var out bytes.Buffer
			code := switchd.Main(args, &out, &out)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output does not name %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// testKeyStore writes a software HSM key store under masterHex holding
// tpk-acquirer (TDES terminal PIN key) and zpk-card-a (TDES zone PIN key).
func testKeyStore(t *testing.T, masterHex string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keystore.json")
	mk, err := hex.DecodeString(masterHex)
	if err != nil {
		t.Fatal(err)
	}
	h, err := software.Open(software.Options{KeyStore: path, MasterKey: mk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	for _, k := range []hsm.GenerateKeyRequest{
		{Label: "tpk-acquirer", Usage: hsm.UsageTerminalPIN, Algorithm: hsm.TDES, Size: 16},
		{Label: "zpk-card-a", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Size: 16},
	} {
		if _, err := h.GenerateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.EnsureDevKeys(ctx); err != nil {
		t.Fatal(err)
	}
	return path
}

package payswitch_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	payswitch "github.com/kbpay/switch/switch"
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
			"listener terminal uses PIN key tpk-demo, a public demo key, outside development mode",
			"route card-a uses PIN key zpk-demo, a public demo key",
		}},
		{name: "production ready", yaml: `
admin: {addr: "0.0.0.0:8580", bearer_token_env: DEVMODE_TEST_ADMIN_TOKEN}
hsm: {master_key_env: DEVMODE_TEST_MASTER_KEY}
listeners: [{name: terminal, addr: "0.0.0.0:8583", pin: {key: tpk-acquirer}}]
routes: [{name: card-a, bins: ["9410"], addrs: ["10.0.0.1:9101"], pin: {key: zpk-card-a}}]
`, env: map[string]string{"DEVMODE_TEST_ADMIN_TOKEN": "a-long-random-token", "DEVMODE_TEST_MASTER_KEY": strings.Repeat("ab", 32)},
			wantCode: 0, want: []string{"configuration OK", "production mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := []string{"-t"}
			if tt.yaml != "" {
				path := filepath.Join(t.TempDir(), "switchd.yaml")
				if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			var out bytes.Buffer
			code := payswitch.Main(args, &out, &out)
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

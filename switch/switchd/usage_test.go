package switchd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kbpay/switch/switch/switchd"
)

// TestMainCommandLine: version and help never start the daemon; unknown
// subcommands, stray arguments and bad flags are one line and exit 2.
func TestMainCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // substring of the output
	}{
		{[]string{"version"}, 0, "switchd version "},
		{[]string{"--version"}, 0, "switchd version "},
		{[]string{"--help"}, 0, "SIGHUP"},
		{[]string{"help"}, 0, "SWITCH_ADMIN_TOKEN"},
		{[]string{"bogus"}, 2, `switchd: unknown command "bogus"`},
		{[]string{"-t", "extra"}, 2, `unknown command "extra"`},
		{[]string{"version", "x"}, 2, `unexpected argument "x"`},
		{[]string{"--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"settle", "stray"}, 2, `switchd settle: unexpected argument "stray"`},
		{[]string{"--config", "/nonexistent/switchd.yaml"}, 1, "switchd: reading config: open /nonexistent/switchd.yaml"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if code := switchd.Main(tt.args, &out, &out); code != tt.code {
				t.Errorf("exit %d, want %d: %s", code, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output %q lacks %q", out.String(), tt.want)
			}
			if tt.code != 0 && strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
				t.Errorf("more than one line: %q", out.String())
			}
		})
	}
}

package frame

import (
	"testing"

	"github.com/kbpay/switch/specs"
)

func TestLoadDialect(t *testing.T) {
	for _, tc := range []struct {
		name, spec, header string
		ok                 bool
	}{
		{"terminal dialect", specs.TerminalDialect, "binary2", true},
		{"unknown spec", "no-such-spec", "binary2", false},
		{"unknown header", specs.TerminalDialect, "no-such-header", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, h, err := LoadDialect(tc.spec, tc.header)
			if tc.ok != (err == nil) {
				t.Fatalf("LoadDialect(%q, %q): err %v, want ok %v", tc.spec, tc.header, err, tc.ok)
			}
			if tc.ok && (spec == nil || h == nil) {
				t.Fatalf("LoadDialect(%q, %q): spec %v header %v", tc.spec, tc.header, spec, h)
			}
		})
	}
}

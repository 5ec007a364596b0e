package payswitch_test

import (
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/switch/config"
)

func fmtAny(v any) string { return fmt.Sprint(v) }

// mustYAML round-trips a Config through YAML so tests exercise the loader.
func mustYAMLB(t testing.TB, c config.Config) []byte { return mustYAML(t, c) }

func mustYAML(t testing.TB, c config.Config) []byte {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

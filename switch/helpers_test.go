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

// testConfig is the default configuration with all state in a temporary
// data folder and the admin endpoint on a free port.
func testConfig(t testing.TB) config.Config {
	c := config.Default()
	c.DataDir = t.TempDir()
	c.HSM.KeyStore, c.HSM.MasterKeyFile, c.Vault.Path, c.Journal.Path = "", "", "", ""
	c.HSM.MasterKeyEnv = "SWITCH_TEST_MASTER_KEY_UNSET"
	c.Admin.Addr = "127.0.0.1:0"
	return c
}

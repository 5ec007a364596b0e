package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/kbpay/switch/hsm/devkeys"
)

// Development mode is the one place that decides whether switchd may fall
// back to its development defaults: the documented demo admin token, the
// publicly known demo PIN and MAC keys (hsm/devkeys) and a generated master
// key. They apply only while the switch cannot be reached from the network
// and holds no real key; everything else is production mode, where
// CheckProduction lists what is missing and the switch refuses to start.

// DevelopmentMode reports whether the development defaults apply, with the
// reason in words. It holds only while every listener and the admin API are
// bound to loopback (127.0.0.0/8, ::1 or "localhost") and no real master
// key is configured: the variable hsm.master_key_env set, an
// hsm.master_key_file other than the default <data_dir>/master.key,
// generate_dev_master_key: false, the pkcs11 backend in either role, or a
// payshield PIN/MAC backend off loopback each mean a real key. getenv reads the environment (os.Getenv outside tests).
func (c *Config) DevelopmentMode(getenv func(string) string) (dev bool, reason string) {
	var why []string
	for _, l := range c.Listeners {
		if !IsLoopback(l.Addr) {
			why = append(why, fmt.Sprintf("listener %s address %s is not loopback", l.Name, l.Addr))
		}
	}
	if !IsLoopback(c.Admin.Addr) {
		why = append(why, fmt.Sprintf("admin address %s is not loopback", c.Admin.Addr))
	}
	why = append(why, c.realMasterKey(getenv)...)
	if len(why) > 0 {
		return false, strings.Join(why, "; ")
	}
	return true, "every listener and the admin API are on loopback and no master key is configured"
}

// realMasterKey lists what makes the configured master key a real one.
func (c *Config) realMasterKey(getenv func(string) string) []string {
	var why []string
	if c.HSM.Backend == "pkcs11" {
		why = append(why, "hsm.backend is pkcs11")
	}
	if c.HSM.PINMAC == "pkcs11" {
		why = append(why, "hsm.pin_mac is pkcs11")
	}
	if c.HSM.PINMACBackend() == "payshield" && !IsLoopback(c.HSM.Payshield.Addr) {
		why = append(why, fmt.Sprintf("hsm.payshield.addr %s is not loopback (a real payment HSM)", c.HSM.Payshield.Addr))
	}
	if getenv(c.HSM.MasterKeyEnv) != "" {
		why = append(why, fmt.Sprintf("hsm.master_key_env %s is set", c.HSM.MasterKeyEnv))
	}
	if !c.defaultMasterKeyFile() {
		why = append(why, fmt.Sprintf("hsm.master_key_file %s is configured", c.HSM.MasterKeyFile))
	}
	if !c.generateDevMasterKey() {
		why = append(why, "generate_dev_master_key is false")
	}
	return why
}

func (c *Config) defaultMasterKeyFile() bool {
	return c.HSM.MasterKeyFile == "" || filepath.Clean(c.HSM.MasterKeyFile) == filepath.Join(c.DataDir, "master.key")
}

func (c *Config) generateDevMasterKey() bool {
	return c.HSM.GenerateDevMasterKey == nil || *c.HSM.GenerateDevMasterKey
}

// IsLoopback reports whether a host:port listen address is bound to the
// loopback interface only. An empty host (every interface), a hostname
// other than "localhost" and anything unparsable are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ProductionError lists what a switch outside development mode lacks.
type ProductionError struct {
	// Reason is why the switch is not in development mode.
	Reason string
	// Problems are the missing or forbidden settings, one each.
	Problems []error
}

func (e *ProductionError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("not in development mode (%s):", e.Reason))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.Error())
	}
	return strings.Join(lines, "\n")
}

func (e *ProductionError) Unwrap() []error { return e.Problems }

// CheckProduction returns nil in development mode; outside it, a
// *ProductionError naming every missing or forbidden setting: the admin
// bearer token (set, and not the public demo token), a master key for the
// software backend, and no key label that names a public demo key.
// `switchd -t` prints it and New refuses to build a switch with it.
func (c *Config) CheckProduction(getenv func(string) string) error {
	dev, reason := c.DevelopmentMode(getenv)
	if dev {
		return nil
	}
	var problems []error
	bad := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	switch token := getenv(c.Admin.BearerTokenEnv); token {
	case "":
		bad("admin.bearer_token_env %s is unset: required when the switch is not loopback-only or has a real master key", c.Admin.BearerTokenEnv)
	case DemoAdminToken:
		bad("admin.bearer_token_env %s holds the public demo token %q: set a secret of your own", c.Admin.BearerTokenEnv, DemoAdminToken)
	}
	if c.HSM.Backend == "software" && getenv(c.HSM.MasterKeyEnv) == "" {
		if c.defaultMasterKeyFile() && c.generateDevMasterKey() {
			bad("hsm: no master key: set %s or hsm.master_key_file (a development master key is generated only in development mode)", c.HSM.MasterKeyEnv)
		} else if _, err := os.Stat(c.HSM.MasterKeyFile); errors.Is(err, fs.ErrNotExist) {
			bad("hsm: no master key: %s is unset and hsm.master_key_file %s does not exist", c.HSM.MasterKeyEnv, c.HSM.MasterKeyFile)
		}
	}
	demo := demoLabels()
	for _, l := range c.Listeners {
		if l.PIN != nil && demo[l.PIN.Key] {
			bad("listener %s uses PIN key %s, a public demo key, outside development mode", l.Name, l.PIN.Key)
		}
		if l.MAC != nil && demo[l.MAC.Key] {
			bad("listener %s uses MAC key %s, a public demo key, outside development mode", l.Name, l.MAC.Key)
		}
	}
	for _, r := range c.Routes {
		if r.PIN != nil && demo[r.PIN.Key] {
			bad("route %s uses PIN key %s, a public demo key, outside development mode", r.Name, r.PIN.Key)
		}
	}
	for _, k := range []struct{ what, label string }{{"tokens.data_key", c.Tokens.DataKey}, {"tokens.hash_key", c.Tokens.HashKey}} {
		if demo[k.label] {
			bad("%s %s is a public demo key, outside development mode", k.what, k.label)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &ProductionError{Reason: reason, Problems: problems}
}

// demoLabels are the HSM labels of the publicly known demo keys.
func demoLabels() map[string]bool {
	m := map[string]bool{}
	for _, req := range devkeys.Imports() {
		m[req.Label] = true
	}
	return m
}

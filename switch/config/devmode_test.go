package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is a fake environment for DevelopmentMode and CheckProduction.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestDevelopmentMode(t *testing.T) {
	no := false
	key := env{"SWITCH_MASTER_KEY": strings.Repeat("ab", 32)}
	tests := []struct {
		name   string
		mutate func(c *Config)
		env    env
		dev    bool
		reason string // substring of the reason
	}{
		{name: "built-in defaults", dev: true, reason: "every listener and the admin API are on loopback"},
		{name: "localhost and ::1 and 127.0.0.2", mutate: func(c *Config) {
			c.Listeners[0].Addr, c.Listeners[1].Addr, c.Admin.Addr = "localhost:8583", "[::1]:8584", "127.0.0.2:8580"
		}, dev: true},
		{name: "admin on every interface", mutate: func(c *Config) { c.Admin.Addr = "0.0.0.0:8580" },
			reason: "admin address 0.0.0.0:8580 is not loopback"},
		{name: "admin with an empty host", mutate: func(c *Config) { c.Admin.Addr = ":8580" },
			reason: "admin address :8580 is not loopback"},
		{name: "listener on a LAN address", mutate: func(c *Config) { c.Listeners[1].Addr = "10.1.2.3:8584" },
			reason: "listener van address 10.1.2.3:8584 is not loopback"},
		{name: "listener on IPv6 any", mutate: func(c *Config) { c.Listeners[0].Addr = "[::]:8583" },
			reason: "listener terminal address [::]:8583 is not loopback"},
		{name: "listener on a hostname", mutate: func(c *Config) { c.Listeners[0].Addr = "switch.example:8583" },
			reason: "is not loopback"},
		{name: "master key in the environment", env: key, reason: "hsm.master_key_env SWITCH_MASTER_KEY is set"},
		{name: "master key file configured", mutate: func(c *Config) { c.HSM.MasterKeyFile = "/etc/switchd/master.key" },
			reason: "hsm.master_key_file /etc/switchd/master.key is configured"},
		{name: "master key file at the default place", mutate: func(c *Config) { c.HSM.MasterKeyFile = "data/./master.key" }, dev: true},
		{name: "generate_dev_master_key false", mutate: func(c *Config) { c.HSM.GenerateDevMasterKey = &no },
			reason: "generate_dev_master_key is false"},
		{name: "pkcs11 backend", mutate: func(c *Config) { c.HSM.Backend, c.HSM.PKCS11.TokenLabel = "pkcs11", "switch" },
			reason: "hsm.backend is pkcs11"},
		{name: "payshield PIN/MAC on loopback", mutate: func(c *Config) { c.HSM.PINMAC = "payshield" }, dev: true},
		{name: "payshield PIN/MAC off loopback", mutate: func(c *Config) { c.HSM.PINMAC, c.HSM.Payshield.Addr = "payshield", "10.0.0.5:1500" },
			reason: "hsm.payshield.addr 10.0.0.5:1500 is not loopback"},
		{name: "pkcs11 PIN/MAC", mutate: func(c *Config) { c.HSM.PINMAC, c.HSM.PKCS11.TokenLabel = "pkcs11", "switch" },
			reason: "hsm.pin_mac is pkcs11"},
		{name: "off loopback and a real key", mutate: func(c *Config) { c.Admin.Addr = "0.0.0.0:8580" }, env: key,
			reason: "admin address 0.0.0.0:8580 is not loopback; hsm.master_key_env SWITCH_MASTER_KEY is set"},
		{name: "unset variable is no key", env: env{"OTHER": "x"}, dev: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			dev, reason := c.DevelopmentMode(tt.env.get)
			if dev != tt.dev {
				t.Errorf("development mode %v, want %v (reason %q)", dev, tt.dev, reason)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", reason, tt.reason)
			}
			if err := c.CheckProduction(tt.env.get); tt.dev && err != nil {
				t.Errorf("development mode, yet CheckProduction: %v", err)
			} else if !tt.dev && err == nil {
				t.Error("CheckProduction passes a production configuration full of demo keys")
			}
		})
	}
}

func TestCheckProduction(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	// production is a configuration reachable from the network that
	// names no demo key.
	production := func(c *Config) {
		c.Admin.Addr = "0.0.0.0:8580"
		c.Listeners = []Listener{{Name: "terminal", Addr: "0.0.0.0:8583", PIN: &PINKey{Key: "tpk-acquirer"}}}
		c.Routes = []IssuerRoute{{Name: "card-a", BINs: []string{"9410"}, Addrs: []string{"10.0.0.1:9101"}, PIN: &PINKey{Key: "zpk-card-a"}}}
		c.applyDefaults()
	}
	token := env{"SWITCH_ADMIN_TOKEN": "a-long-random-secret"}
	withKey := env{"SWITCH_ADMIN_TOKEN": "a-long-random-secret", "SWITCH_MASTER_KEY": strings.Repeat("ab", 32)}
	tests := []struct {
		name   string
		mutate func(c *Config)
		env    env
		want   []string // problems, as substrings; none means nil
	}{
		{name: "token and key from the environment", env: withKey},
		{name: "token and key file", mutate: func(c *Config) { c.HSM.MasterKeyFile = keyFile }, env: token},
		{name: "no token", env: env{"SWITCH_MASTER_KEY": "x"},
			want: []string{"admin.bearer_token_env SWITCH_ADMIN_TOKEN is unset: required when the switch is not loopback-only"}},
		{name: "demo token", env: env{"SWITCH_ADMIN_TOKEN": DemoAdminToken, "SWITCH_MASTER_KEY": "x"},
			want: []string{"holds the public demo token"}},
		{name: "no master key", env: token, want: []string{"hsm: no master key: set SWITCH_MASTER_KEY or hsm.master_key_file"}},
		{name: "missing master key file", mutate: func(c *Config) { c.HSM.MasterKeyFile = keyFile + ".gone" }, env: token,
			want: []string{"does not exist"}},
		{name: "pkcs11 needs no master key", mutate: func(c *Config) { c.HSM.Backend, c.HSM.PKCS11.TokenLabel = "pkcs11", "switch" }, env: token},
		{name: "demo keys named", env: withKey, mutate: func(c *Config) {
			c.Listeners[0].PIN.Key, c.Listeners[0].MAC = "bdk-demo", &MACKey{Key: "mac-aes-demo"}
			c.Routes[0].PIN.Key = "zpk-aes-demo"
			c.Tokens.DataKey = "zpk-demo"
		}, want: []string{
			"listener terminal uses PIN key bdk-demo, a public demo key, outside development mode",
			"listener terminal uses MAC key mac-aes-demo, a public demo key",
			"route card-a uses PIN key zpk-aes-demo, a public demo key",
			"tokens.data_key zpk-demo is a public demo key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			production(&c)
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			err := c.CheckProduction(tt.env.get)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *ProductionError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ProductionError", err)
			}
			if len(pe.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(pe.Problems), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "127.255.0.9:1": true, "[::1]:1": true, "localhost:1": true, "LOCALHOST:1": true,
		"[::ffff:127.0.0.1]:1": true, "0.0.0.0:1": false, ":1": false, "[::]:1": false, "10.0.0.1:1": false,
		"localhost.example:1": false, "[fe80::1%lo]:1": false, "127.0.0.1": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestAdminTLSNeedsBothFiles(t *testing.T) {
	_, err := Parse([]byte("admin: {tls: {cert_file: /x/cert.pem}}"))
	if err == nil || !strings.Contains(err.Error(), "admin.tls: cert_file and key_file are both required") {
		t.Fatalf("got %v", err)
	}
	c, err := Parse([]byte("admin: {tls: {cert_file: /x/cert.pem, key_file: /x/key.pem}}"))
	if err != nil || c.Admin.TLS == nil || c.Admin.TLS.KeyFile != "/x/key.pem" {
		t.Fatalf("%+v %v", c.Admin, err)
	}
}

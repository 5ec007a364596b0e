package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestStoreSettings(t *testing.T) {
	host, _ := os.Hostname()
	for _, tt := range []struct {
		name    string
		yaml    string
		wantErr string // substring; "" means valid
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Store.Backend != "embedded" || c.Store.Lease != 10*time.Second || c.Store.DSNEnv != "SWITCH_STORE_DSN" {
				t.Errorf("store defaults %+v", c.Store)
			}
			if host != "" && c.InstanceName != host {
				t.Errorf("instance_name %q, want the host name %q", c.InstanceName, host)
			}
		}},
		{name: "explicit", yaml: "instance_name: sw-2\ninstance_id: 2\nstore: {backend: embedded, lease: 30s}", check: func(t *testing.T, c Config) {
			if c.InstanceName != "sw-2" || c.InstanceID != 2 || c.Store.Lease != 30*time.Second {
				t.Errorf("%q %d %+v", c.InstanceName, c.InstanceID, c.Store)
			}
		}},
		{name: "postgres not in this build", yaml: "store: {backend: postgres, dsn: 'postgres://x'}", wantErr: "not available in this build"},
		{name: "unknown backend", yaml: "store: {backend: mysql}", wantErr: `store.backend "mysql"`},
		{name: "dsn for the embedded store", yaml: "store: {dsn: 'postgres://x'}", wantErr: "store.dsn is for backend postgres"},
		{name: "lease too short", yaml: "store: {lease: 100ms}", wantErr: "store.lease"},
		{name: "instance name with a space", yaml: "instance_name: 'a b'", wantErr: "instance_name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
	s := Store{DSNEnv: "X"}
	if got := s.ResolvedDSN(func(k string) string { return map[string]string{"X": "from-env"}[k] }); got != "from-env" {
		t.Errorf("DSN from the environment: %q", got)
	}
	s.DSN = "from-file"
	if got := s.ResolvedDSN(func(string) string { return "from-env" }); got != "from-file" {
		t.Errorf("DSN from the file: %q", got)
	}
}

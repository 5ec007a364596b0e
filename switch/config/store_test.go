package config

import (
	"os"
	"testing"
	"time"
)

func TestStoreSettings(t *testing.T) {
	host, _ := os.Hostname()
	runParseCases(t, []parseCase{
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
		{name: "postgres", yaml: "store: {backend: postgres, dsn: 'postgres://x', migrate_at_start: true}", check: func(t *testing.T, c Config) {
			if !c.InstanceIDFromStore() || c.Store.MaxConns != 16 || c.Store.StatementTimeout != 5*time.Second || !c.Store.MigrateAtStart {
				t.Errorf("postgres defaults: instance_id %d %+v", c.InstanceID, c.Store)
			}
		}},
		{name: "postgres with an instance number", yaml: "instance_id: 7\nstore: {backend: postgres}", check: func(t *testing.T, c Config) {
			if c.InstanceIDFromStore() || c.InstanceID != 7 {
				t.Errorf("instance_id %d", c.InstanceID)
			}
		}},
		{name: "embedded without instance_id is 0", yaml: "store: {backend: embedded}", check: func(t *testing.T, c Config) {
			if c.InstanceID != 0 || c.InstanceIDFromStore() {
				t.Errorf("instance_id %d", c.InstanceID)
			}
		}},
		{name: "negative instance_id with embedded", yaml: "instance_id: -3", wantErr: "instance_id -3"},
		{name: "migrate_at_start for the embedded store", yaml: "store: {migrate_at_start: true}", wantErr: "store.migrate_at_start"},
		{name: "postgres statement timeout too short", yaml: "store: {backend: postgres, statement_timeout: 1ms}", wantErr: "store.statement_timeout"},
		{name: "unknown backend", yaml: "store: {backend: mysql}", wantErr: `store.backend "mysql"`},
		{name: "dsn for the embedded store", yaml: "store: {dsn: 'postgres://x'}", wantErr: "store.dsn is for backend postgres"},
		{name: "lease too short", yaml: "store: {lease: 100ms}", wantErr: "store.lease"},
		{name: "instance name with a space", yaml: "instance_name: 'a b'", wantErr: "instance_name"},
	})
	s := Store{DSNEnv: "X"}
	if got := s.ResolvedDSN(func(k string) string { return map[string]string{"X": "from-env"}[k] }); got != "from-env" {
		t.Errorf("DSN from the environment: %q", got)
	}
	s.DSN = "from-file"
	if got := s.ResolvedDSN(func(string) string { return "from-env" }); got != "from-file" {
		t.Errorf("DSN from the file: %q", got)
	}
}

package config

import (
	"os"
	"strings"
	"time"
)

// Store selects the backend of the journal, SAF queue and vault and the
// lease that keeps an instance's work its own.
type Store struct {
	// Backend is "embedded" (SQLite files in the data folder, one switchd
	// per folder). "postgres" is reserved for the shared store of several
	// instances and refused until it exists. Default "embedded".
	Backend string `yaml:"backend"`
	// DSN is the PostgreSQL connection string (postgres only; else from
	// the environment variable DSNEnv). Default "".
	DSN string `yaml:"dsn"`
	// DSNEnv names the environment variable read for the DSN when DSN is
	// empty. Default "SWITCH_STORE_DSN".
	DSNEnv string `yaml:"dsn_env"`
	// Lease is how long an instance's heartbeat (and a SAF claim) keeps
	// its in-flight transactions and SAF items its own: a survivor takes
	// over the work of an instance silent for longer. Default 10s.
	Lease time.Duration `yaml:"lease"`
}

// StoreBackends are the store backends this build has.
var StoreBackends = []string{"embedded"}

// ResolvedDSN is DSN, or the environment variable DSNEnv when DSN is empty.
func (s Store) ResolvedDSN(getenv func(string) string) string {
	if s.DSN != "" {
		return s.DSN
	}
	return getenv(s.DSNEnv)
}

func (s *Store) setDefaults() {
	s.Backend = orDefault(s.Backend, "embedded")
	s.DSNEnv = orDefault(s.DSNEnv, "SWITCH_STORE_DSN")
	setDuration(&s.Lease, 10*time.Second)
}

func (s Store) check(bad func(string, ...any)) {
	switch s.Backend {
	case "embedded":
		if s.DSN != "" {
			bad("store.dsn is for backend postgres; backend embedded keeps its files in data_dir")
		}
	case "postgres":
		bad("store.backend postgres is not available in this build (backends: %s)", strings.Join(StoreBackends, ", "))
	default:
		bad("store.backend %q: want one of %s", s.Backend, strings.Join(StoreBackends, ", "))
	}
	if s.Lease < time.Second {
		bad("store.lease %s: want at least 1s", s.Lease)
	}
}

// defaultInstanceName is the host name ("switchd" when it is unknown).
func defaultInstanceName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "switchd"
}

func checkInstanceName(bad func(string, ...any), name string) {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n") {
		bad("instance_name %q: want 1-64 characters without spaces", name)
	}
}

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
	// per folder) or "postgres" (one database shared by several instances,
	// switch/store/postgres). Default "embedded".
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
	// MigrateAtStart applies missing schema migrations when switchd starts
	// (postgres). Default false: run `switchd migrate --config F` (the
	// deploy's migration Job) before starting a new version.
	MigrateAtStart bool `yaml:"migrate_at_start"`
	// MaxConns caps the connection pool of each instance (postgres).
	// Default 16.
	MaxConns int `yaml:"max_conns"`
	// StatementTimeout bounds each statement on the database (postgres):
	// a store slower than this is unavailable (new sales 91). Default 5s.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// STANPartitions splits each route's STAN space among the instances
	// sharing the store: instance number n sends only STANs s with
	// s mod STANPartitions == n mod STANPartitions, so two instances never
	// send one issuer the same DE 11 (hosts recognise repeats by DE 11 +
	// DE 7). At least the number of instances. Default 1 (embedded: one
	// instance), 10 with postgres (99,999 STANs per instance and route).
	STANPartitions int `yaml:"stan_partitions"`
}

// InstanceIDAuto is Config.InstanceID when the file leaves instance_id
// out with backend postgres: the instance takes a number (0-99) the shared
// store keeps for its instance_name, so replicas sharing one
// configuration never share an RRN prefix. With the embedded store it
// becomes 0.
const InstanceIDAuto = -1

// InstanceIDFromStore: the instance number comes from the shared store.
func (c Config) InstanceIDFromStore() bool {
	return c.InstanceID == InstanceIDAuto && c.Store.Backend == "postgres"
}

// StoreBackends are the store backends this build has.
var StoreBackends = []string{"embedded", "postgres"}

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
	setDuration(&s.StatementTimeout, 5*time.Second)
	s.MaxConns = orDefaultInt(s.MaxConns, 16)
	if s.Backend == "postgres" {
		s.STANPartitions = orDefaultInt(s.STANPartitions, 10)
	}
	s.STANPartitions = orDefaultInt(s.STANPartitions, 1)
}

func (s Store) check(bad func(string, ...any)) {
	if s.STANPartitions < 1 || s.STANPartitions > 100 {
		bad("store.stan_partitions %d outside 1..100", s.STANPartitions)
	}
	switch s.Backend {
	case "embedded":
		if s.DSN != "" {
			bad("store.dsn is for backend postgres; backend embedded keeps its files in data_dir")
		}
		if s.MigrateAtStart {
			bad("store.migrate_at_start is for backend postgres")
		}
	case "postgres":
		// The DSN may come from the environment at start (a Secret), so a
		// missing one is reported when the store is opened.
		if s.MaxConns < 2 {
			bad("store.max_conns %d: want at least 2", s.MaxConns)
		}
		if s.StatementTimeout < 100*time.Millisecond {
			bad("store.statement_timeout %s: want at least 100ms", s.StatementTimeout)
		}
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

// Package postgres is the store.Store shared by several switchd instances:
// PostgreSQL through a pgx connection pool. The journal's hot writes
// (recording a request, its outcome, events, SAF results, heartbeats,
// claims, sequence blocks) are single statements that a group committer
// sends together, one transaction and one round trip per group (a pgx
// batch: BEGIN, the statements, COMMIT); durability is the database's
// (synchronous_commit). Reserving and releasing a cancel are one
// statement each in the same group commit; taking over a lapsed instance
// runs in its own transaction.
// SAF items are claimed with FOR UPDATE SKIP LOCKED, a one-time token is
// used by one conditional UPDATE, and unique violations are told by their
// SQLSTATE (23505), never by message text.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kbpay/switch/switch/store"
)

// Options configure the PostgreSQL store.
type Options struct {
	// DSN is the connection string (postgres://user:password@host:port/db
	// or key=value). Required. Never logged unmasked (MaskDSN).
	DSN string
	// Instance is who this handle records and claims as.
	Instance store.Instance
	// MaxConns caps the pool. Default 16.
	MaxConns int32
	// StatementTimeout bounds every statement on the server
	// (statement_timeout) and each round trip here. Default 5s.
	StatementTimeout time.Duration
	// ConnectTimeout bounds opening a connection: how soon an unreachable
	// database is reported (store.ErrUnavailable). Default 3s.
	ConnectTimeout time.Duration
	// MaxBatch caps how many writes share one commit. Default 256.
	MaxBatch int
	// Committers is how many group commits may be in flight at once, each
	// on a connection of its own: while one group waits for its WAL
	// flush, the next is already executing on another backend, and
	// PostgreSQL flushes the WAL of commits that arrive together once.
	// Default 4 (BenchmarkSale, docs/store.md), at most MaxConns-1 (reads
	// need a connection too).
	Committers int
	// MigrateAtStart applies missing migrations when opening; otherwise
	// Open refuses a database whose schema is not this build's (run
	// `switchd migrate`).
	MigrateAtStart bool
	// OnCommit, when set, is told how long each group commit took (one
	// round trip), how many writes it carried and the error that failed
	// the whole group (nil when it committed): the journal commit
	// metrics. Called from the committer: safe for concurrent use, never
	// blocking.
	OnCommit func(d time.Duration, writes int, err error)

	// trips, when set (tests and benchmarks), counts the messages this
	// handle's connections flush to the server: its round trips.
	trips *atomic.Int64
}

func (o *Options) setDefaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 5 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Committers <= 0 {
		o.Committers = 4
	}
	o.Committers = max(1, min(o.Committers, int(o.MaxConns)-1))
	o.Instance.Lease = o.Instance.LeaseOr()
}

// ErrSchema: the database's schema is not the version this build needs.
var ErrSchema = errors.New("postgres store: schema not migrated")

// Store is the PostgreSQL store.Store.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	inst store.Instance
	now  func() time.Time

	writes  chan *write
	stop    chan struct{}
	stopped sync.WaitGroup
	// drained is closed once every committer has returned: a write still
	// in the channel then is never committed.
	drained chan struct{}
	closing sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database, checks (or, with MigrateAtStart,
// applies) its schema and starts the group committer.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.DSN == "" {
		return nil, errors.New("postgres store: no DSN (store.dsn or $SWITCH_STORE_DSN)")
	}
	o.setDefaults()
	pool, err := newPool(ctx, o, o.MaxConns)
	if err != nil {
		return nil, err
	}
	if o.MigrateAtStart {
		if _, err := migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	v, err := schemaVersion(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store on %s: %w", MaskDSN(o.DSN), err)
	}
	if v != Latest() {
		pool.Close()
		return nil, fmt.Errorf("postgres store on %s: schema version %d, this build needs %d (run `switchd migrate --config F` or set store.migrate_at_start): %w",
			MaskDSN(o.DSN), v, Latest(), ErrSchema)
	}
	s := &Store{pool: pool, opts: o, inst: o.Instance, now: time.Now, writes: make(chan *write, 4096), stop: make(chan struct{}),
		drained: make(chan struct{})}
	for range o.Committers {
		s.stopped.Add(1)
		go s.commitLoop()
	}
	return s, nil
}

// newPool opens a pool on o.DSN with the statement timeout set per session.
func newPool(ctx context.Context, o Options, maxConns int32) (*pgxpool.Pool, error) {
	o.setDefaults()
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN: say only that it is malformed.
		return nil, fmt.Errorf("postgres store: malformed DSN %s", MaskDSN(o.DSN))
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(o.StatementTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "switchd"
	cfg.HealthCheckPeriod = 5 * time.Second
	if o.trips != nil {
		countTrips(&cfg.ConnConfig.Config, o.trips)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store on %s: %w", MaskDSN(o.DSN), unavailable(err))
	}
	pctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+o.StatementTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store on %s: %w", MaskDSN(o.DSN), unavailable(err))
	}
	return pool, nil
}

func (s *Store) Sales() store.Sales         { return s }
func (s *Store) GiveBacks() store.GiveBacks { return s }
func (s *Store) Queue() store.Queue         { return s }
func (s *Store) Lookup() store.Lookup       { return s }
func (s *Store) Instances() store.Instances { return s }
func (s *Store) ZoneKeys() store.ZoneKeys   { return zoneKeys{s} }
func (s *Store) Tokens() store.Tokens       { return vault{s} }
func (s *Store) Instance() store.Instance   { return s.inst }

// Close stops the committer after the writes already submitted and closes
// the pool.
func (s *Store) Close() error {
	s.closing.Do(func() {
		close(s.stop)
		s.stopped.Wait()
		close(s.drained)
		s.pool.Close()
	})
	return nil
}

// MaskDSN returns dsn with its password replaced by "xxxxx", for logs and
// errors.
func MaskDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// key=value form: mask password=...
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// Errors.

const (
	codeUniqueViolation = "23505"
	codeUndefinedTable  = "42P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUnique tells a unique violation by its SQLSTATE.
func isUnique(err error) bool { return pgCode(err) == codeUniqueViolation }

func isUndefinedTable(err error) bool { return pgCode(err) == codeUndefinedTable }

// unavailable maps err: a server-reported error (a statement that failed)
// stays as it is; anything else (connection refused or lost, timeout,
// closed pool) wraps store.ErrUnavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || isDomain(err) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && !strings.HasPrefix(pe.Code, "08") && !strings.HasPrefix(pe.Code, "57") && !strings.HasPrefix(pe.Code, "53") {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// ctxFor bounds one round trip.
func (s *Store) ctxFor(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.ConnectTimeout+s.opts.StatementTimeout)
}

func (s *Store) msNow() int64 { return s.now().UnixMilli() }

// isDomain: err is one of the store's answers, not a database failure.
func isDomain(err error) bool {
	for _, e := range []error{store.ErrDuplicate, store.ErrNotFound, store.ErrExceeds, store.ErrNotReserved,
		store.ErrAmbiguous, store.ErrLeaseHeld, store.ErrLeaseLost, store.ErrNotUsable, store.ErrFinal,
		store.ErrSAFState, store.ErrNoReason} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, applied in order: NNNN_name.sql.
// A shipped file never changes; a new version is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serialises migrations from
// several instances or jobs on one database ("kbsw" in ASCII).
const migrationLock = 0x6b627377

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the schema versions this build knows, oldest first.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, path := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(path, "migrations/"), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("postgres store: migration file %s: want NNNN_name.sql", path)
		}
		raw, err := migrations.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(raw)})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Version < out[b].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("postgres store: migration versions not consecutive at %04d_%s", m.Version, m.Name)
		}
	}
	return out, nil
}

// Latest is the newest schema version this build knows.
func Latest() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// Migrate applies the migrations the database lacks, each in its own
// transaction, under an advisory lock (instances or jobs racing apply each
// version once), and returns the versions it applied. A database newer
// than this build is refused.
func Migrate(ctx context.Context, dsn string) ([]int, error) {
	pool, err := newPool(ctx, Options{DSN: dsn}, 1)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

func migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres store: migrating: %w", unavailable(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, fmt.Errorf("postgres store: migration lock: %w", unavailable(err))
	}
	defer func() { _, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock) }()
	if _, err := conn.Exec(ctx, migrationsTable); err != nil {
		return nil, fmt.Errorf("postgres store: creating schema_migrations: %w", err)
	}
	have, err := schemaVersion(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if have > len(ms) {
		return nil, fmt.Errorf("postgres store: database schema version %d is newer than this build's %d", have, len(ms))
	}
	var applied []int
	for _, m := range ms[have:] {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return applied, fmt.Errorf("postgres store: migration %04d: %w", m.Version, unavailable(err))
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			_ = tx.Rollback(ctx)
			return applied, fmt.Errorf("postgres store: migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			_ = tx.Rollback(ctx)
			return applied, fmt.Errorf("postgres store: recording migration %04d: %w", m.Version, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return applied, fmt.Errorf("postgres store: committing migration %04d: %w", m.Version, unavailable(err))
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// rowQuerier is a *pgx.Conn or *pgxpool.Pool.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion is the newest applied migration (0 on an empty database).
func schemaVersion(ctx context.Context, q rowQuerier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if isUndefinedTable(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres store: reading the schema version: %w", unavailable(err))
	}
	return v, nil
}

package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const vaultSchema = `
CREATE TABLE IF NOT EXISTS tokens (
	token           TEXT PRIMARY KEY,
	pan_key         TEXT NOT NULL,
	pan_key_version INTEGER NOT NULL,
	pan_ct          BLOB NOT NULL,
	pan_hash        BLOB NOT NULL,
	hash_version    INTEGER NOT NULL,
	masked_pan      TEXT NOT NULL,
	card_expiry     TEXT NOT NULL,
	expires_at      INTEGER NOT NULL,
	status          TEXT NOT NULL,
	kind            TEXT NOT NULL,
	domain          TEXT NOT NULL,
	use_count       INTEGER NOT NULL DEFAULT 0,
	max_uses        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_pan_hash ON tokens(pan_hash);
`

const (
	tokenColumns = sqlstore.TokenColumns
	insertToken  = `INSERT INTO tokens (` + tokenColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
)

// vault is the embedded token vault (store.Tokens), one SQLite file.
// Writes go through one connection (SQLite has one writer); reads use a
// pool.
type vault struct {
	w, r *sql.DB
	db   *sqlitedb.DB
}

// openVault opens or creates the vault database file at path.
func openVault(path string) (*vault, error) {
	db, err := sqlitedb.Open(path, sqlitedb.SyncNormal, vaultSchema, false)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &vault{w: db.W, r: db.R, db: db}, nil
}

// Close closes the database.
func (s *vault) Close() error { return s.db.Close() }

func (s *vault) Insert(ctx context.Context, rec store.TokenRecord) error {
	args, err := sqlstore.TokenArgs(rec)
	if err != nil {
		return err
	}
	if _, err = s.w.ExecContext(ctx, insertToken, args...); err != nil {
		if sqlitedb.IsUnique(err) {
			return fmt.Errorf("vault: inserting token: %w", store.ErrDuplicate)
		}
		return fmt.Errorf("vault: inserting token: %w", err)
	}
	return nil
}

// InsertMany inserts many records in one transaction (bulk provisioning
// and benchmarks).
func (s *vault) InsertMany(ctx context.Context, recs []store.TokenRecord) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vault: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, insertToken)
	if err != nil {
		return fmt.Errorf("vault: prepare: %w", err)
	}
	defer stmt.Close()
	for _, rec := range recs {
		args, err := sqlstore.TokenArgs(rec)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			if sqlitedb.IsUnique(err) {
				err = store.ErrDuplicate
			}
			return fmt.Errorf("vault: inserting token batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: commit: %w", err)
	}
	return nil
}

func (s *vault) Get(ctx context.Context, token string) (store.TokenRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE token = ?`, token)
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: reading token: %w", err)
	}
	defer rows.Close()
	return sqlstore.One(rows, sqlstore.ScanToken)
}

func (s *vault) SetStatus(ctx context.Context, token string, status store.TokenStatus, now time.Time) (store.TokenRecord, error) {
	row := s.db.WQueryRow(ctx, `UPDATE tokens SET status = ?, updated_at = ?
		WHERE token = ? AND status <> 'deleted' RETURNING `+tokenColumns, string(status), now.UnixMilli(), token)
	rec, err := scanToken(row)
	if errors.Is(err, store.ErrNotFound) {
		if cur, gerr := s.Get(ctx, token); gerr == nil && cur.Status == store.TokenDeleted {
			return cur, store.ErrFinal
		}
	}
	return rec, err
}

func (s *vault) Use(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	row := s.db.WQueryRow(ctx, `UPDATE tokens SET use_count = use_count + 1, updated_at = ?
		WHERE token = ? AND status = 'active' AND expires_at > ? AND (max_uses = 0 OR use_count < max_uses)
		RETURNING `+tokenColumns, now.UnixMilli(), token, now.UnixMilli())
	rec, err := scanToken(row)
	if errors.Is(err, store.ErrNotFound) {
		return store.TokenRecord{}, store.ErrNotUsable
	}
	return rec, err
}

func (s *vault) FindByPANHash(ctx context.Context, hash []byte) ([]store.TokenRecord, error) {
	out, err := all(ctx, s.db, sqlstore.ScanToken, `SELECT `+tokenColumns+` FROM tokens WHERE pan_hash = ? ORDER BY created_at`, hash)
	if err != nil {
		return nil, fmt.Errorf("vault: query by PAN hash: %w", err)
	}
	return out, nil
}

// Count returns how many tokens the vault holds.
func (s *vault) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}

// scanToken reads the row an UPDATE ... RETURNING answers: store.ErrNotFound
// when it touched none.
func scanToken(row *sql.Row) (store.TokenRecord, error) {
	rec, err := sqlstore.ScanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TokenRecord{}, store.ErrNotFound
	}
	return rec, err
}

package vault

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
)

const schema = `
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

const columns = `token, pan_key, pan_key_version, pan_ct, pan_hash, hash_version, masked_pan, card_expiry,
	expires_at, status, kind, domain, use_count, max_uses, created_at, updated_at`

// SQLite is the embedded single-file Store (pure Go, no server). Writes go
// through one connection (SQLite has one writer); reads use a pool.
type SQLite struct {
	w, r *sql.DB
	db   *sqlitedb.DB
}

// OpenSQLite opens or creates the vault database file at path.
func OpenSQLite(path string) (*SQLite, error) {
	db, err := sqlitedb.Open(path, sqlitedb.SyncNormal, schema, false)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &SQLite{w: db.W, r: db.R, db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func (s *SQLite) Insert(ctx context.Context, rec Record) error {
	domain, err := json.Marshal(rec.Domain)
	if err != nil {
		return fmt.Errorf("vault: encoding domain: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO tokens (`+columns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		rec.Token, rec.PANKey, rec.PANKeyVersion, rec.PANCiphertext, rec.PANHash, rec.HashVersion, rec.MaskedPAN,
		rec.CardExpiry, rec.ExpiresAt.UnixMilli(), string(rec.Status), string(rec.Kind), string(domain),
		rec.UseCount, rec.MaxUses, rec.CreatedAt.UnixMilli(), rec.UpdatedAt.UnixMilli())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "PRIMARY KEY") {
			return ErrExists
		}
		return fmt.Errorf("vault: inserting token: %w", err)
	}
	return nil
}

// InsertBatch inserts many records in one transaction (bulk provisioning
// and benchmarks).
func (s *SQLite) InsertBatch(ctx context.Context, recs []Record) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vault: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tokens (`+columns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("vault: prepare: %w", err)
	}
	defer stmt.Close()
	for _, rec := range recs {
		domain, _ := json.Marshal(rec.Domain)
		if _, err := stmt.ExecContext(ctx, rec.Token, rec.PANKey, rec.PANKeyVersion, rec.PANCiphertext, rec.PANHash,
			rec.HashVersion, rec.MaskedPAN, rec.CardExpiry, rec.ExpiresAt.UnixMilli(), string(rec.Status), string(rec.Kind),
			string(domain), rec.UseCount, rec.MaxUses, rec.CreatedAt.UnixMilli(), rec.UpdatedAt.UnixMilli()); err != nil {
			return fmt.Errorf("vault: inserting token batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: commit: %w", err)
	}
	return nil
}

func (s *SQLite) Get(ctx context.Context, token string) (Record, error) {
	row := s.db.QueryRow(ctx, `SELECT `+columns+` FROM tokens WHERE token = ?`, token)
	return scan(row)
}

func (s *SQLite) SetStatus(ctx context.Context, token string, status Status, now time.Time) (Record, error) {
	row := s.db.WQueryRow(ctx, `UPDATE tokens SET status = ?, updated_at = ?
		WHERE token = ? AND status <> 'deleted' RETURNING `+columns, string(status), now.UnixMilli(), token)
	rec, err := scan(row)
	if errors.Is(err, ErrNotFound) {
		if cur, gerr := s.Get(ctx, token); gerr == nil && cur.Status == Deleted {
			return cur, ErrFinal
		}
	}
	return rec, err
}

func (s *SQLite) Use(ctx context.Context, token string, now time.Time) (Record, error) {
	row := s.db.WQueryRow(ctx, `UPDATE tokens SET use_count = use_count + 1, updated_at = ?
		WHERE token = ? AND status = 'active' AND expires_at > ? AND (max_uses = 0 OR use_count < max_uses)
		RETURNING `+columns, now.UnixMilli(), token, now.UnixMilli())
	rec, err := scan(row)
	if errors.Is(err, ErrNotFound) {
		return Record{}, ErrNotUsable
	}
	return rec, err
}

func (s *SQLite) FindByPANHash(ctx context.Context, hash []byte) ([]Record, error) {
	rows, err := s.db.Query(ctx, `SELECT `+columns+` FROM tokens WHERE pan_hash = ? ORDER BY created_at`, hash)
	if err != nil {
		return nil, fmt.Errorf("vault: query by PAN hash: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		rec, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// Count returns how many tokens the vault holds.
func (s *SQLite) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Record, error) {
	var rec Record
	var status, kind, domain string
	var expires, created, updated int64
	err := row.Scan(&rec.Token, &rec.PANKey, &rec.PANKeyVersion, &rec.PANCiphertext, &rec.PANHash, &rec.HashVersion,
		&rec.MaskedPAN, &rec.CardExpiry, &expires, &status, &kind, &domain, &rec.UseCount, &rec.MaxUses, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("vault: reading token record: %w", err)
	}
	if err := json.Unmarshal([]byte(domain), &rec.Domain); err != nil {
		return Record{}, fmt.Errorf("vault: token record has a malformed domain: %w", err)
	}
	rec.Status, rec.Kind = Status(status), Kind(kind)
	switch {
	case rec.Status != Active && rec.Status != Suspended && rec.Status != Deleted:
		return Record{}, fmt.Errorf("vault: token record has unknown status %q", status)
	case rec.Kind != Device && rec.Kind != OneTime:
		return Record{}, fmt.Errorf("vault: token record has unknown kind %q", kind)
	case len(rec.PANCiphertext) == 0:
		return Record{}, errors.New("vault: token record has no PAN ciphertext")
	}
	rec.ExpiresAt, rec.CreatedAt, rec.UpdatedAt = time.UnixMilli(expires), time.UnixMilli(created), time.UnixMilli(updated)
	return rec, nil
}

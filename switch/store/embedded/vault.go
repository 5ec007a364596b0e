package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
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

const tokenColumns = `token, pan_key, pan_key_version, pan_ct, pan_hash, hash_version, masked_pan, card_expiry,
	expires_at, status, kind, domain, use_count, max_uses, created_at, updated_at`

// vault is the embedded token vault (store.Tokens), one SQLite file.
// Writes go through one connection (SQLite has one writer); reads use a
// pool. Uses (the payment path's one vault write) are group-committed by
// one goroutine: see recordUses.
type vault struct {
	w, r *sql.DB
	db   *sqlitedb.DB
	// useStmt is the Use statement, prepared on the writer at open (a
	// batch's transaction holds the writer's only connection, so it could
	// not be prepared then).
	useStmt *sql.Stmt
	uses    chan useRequest // unbuffered: a request sent is a request answered
	stop    chan struct{}
	stopped chan struct{}
	close   sync.Once
}

// openVault opens or creates the vault database file at path.
func openVault(path string) (*vault, error) {
	db, err := sqlitedb.Open(path, sqlitedb.SyncNormal, vaultSchema, false)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	useStmt, err := db.W.Prepare(useQuery)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("vault: preparing the use statement: %w", err)
	}
	s := &vault{w: db.W, r: db.R, db: db, useStmt: useStmt,
		uses: make(chan useRequest), stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.recordUses()
	return s, nil
}

// Close answers the uses already taken, then closes the database.
func (s *vault) Close() error {
	s.close.Do(func() { close(s.stop) })
	<-s.stopped
	return errors.Join(s.useStmt.Close(), s.db.Close())
}

func (s *vault) Insert(ctx context.Context, rec store.TokenRecord) error {
	domain, err := json.Marshal(rec.Domain)
	if err != nil {
		return fmt.Errorf("vault: encoding domain: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		rec.Token, rec.PANKey, rec.PANKeyVersion, rec.PANCiphertext, rec.PANHash, rec.HashVersion, rec.MaskedPAN,
		rec.CardExpiry, rec.ExpiresAt.UnixMilli(), string(rec.Status), string(rec.Kind), string(domain),
		rec.UseCount, rec.MaxUses, rec.CreatedAt.UnixMilli(), rec.UpdatedAt.UnixMilli())
	if err != nil {
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
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("vault: prepare: %w", err)
	}
	defer stmt.Close()
	for _, rec := range recs {
		domain, _ := json.Marshal(rec.Domain)
		if _, err := stmt.ExecContext(ctx, rec.Token, rec.PANKey, rec.PANKeyVersion, rec.PANCiphertext, rec.PANHash,
			rec.HashVersion, rec.MaskedPAN, rec.CardExpiry, rec.ExpiresAt.UnixMilli(), string(rec.Status), string(rec.Kind),
			string(domain), rec.UseCount, rec.MaxUses, rec.CreatedAt.UnixMilli(), rec.UpdatedAt.UnixMilli()); err != nil {
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
	row := s.db.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE token = ?`, token)
	return scanToken(row)
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

// Use hands the use to recordUses and waits for its answer (SQLite does
// no better with two writers than with one: they would queue on its lock).
func (s *vault) Use(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	req := useRequest{token: token, now: now.UnixMilli(), answer: make(chan useAnswer, 1)}
	select {
	case s.uses <- req:
	case <-ctx.Done():
		return store.TokenRecord{}, fmt.Errorf("vault: recording a use: %w", ctx.Err())
	case <-s.stopped:
		return store.TokenRecord{}, errVaultClosed
	}
	// Taken: the answer follows the commit (no context: the use may be
	// recorded, and the caller must hear whether it was).
	a := <-req.answer
	return a.rec, a.err
}

func (s *vault) FindByPANHash(ctx context.Context, hash []byte) ([]store.TokenRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE pan_hash = ? ORDER BY created_at`, hash)
	if err != nil {
		return nil, fmt.Errorf("vault: query by PAN hash: %w", err)
	}
	defer rows.Close()
	var out []store.TokenRecord
	for rows.Next() {
		rec, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// Count returns how many tokens the vault holds.
func (s *vault) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}

func scanToken(row scanner) (store.TokenRecord, error) {
	var rec store.TokenRecord
	var status, kind, domain string
	var expires, created, updated int64
	err := row.Scan(&rec.Token, &rec.PANKey, &rec.PANKeyVersion, &rec.PANCiphertext, &rec.PANHash, &rec.HashVersion,
		&rec.MaskedPAN, &rec.CardExpiry, &expires, &status, &kind, &domain, &rec.UseCount, &rec.MaxUses, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TokenRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: reading token record: %w", err)
	}
	// "{}" (no restriction, most tokens) is the zero Domain: no decoding.
	if err := unmarshalDomain(domain, &rec.Domain); err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: token record has a malformed domain: %w", err)
	}
	rec.Status, rec.Kind = store.TokenStatus(status), store.TokenKind(kind)
	switch {
	case rec.Status != store.TokenActive && rec.Status != store.TokenSuspended && rec.Status != store.TokenDeleted:
		return store.TokenRecord{}, fmt.Errorf("vault: token record has unknown status %q", status)
	case rec.Kind != store.DeviceToken && rec.Kind != store.OneTimeToken:
		return store.TokenRecord{}, fmt.Errorf("vault: token record has unknown kind %q", kind)
	case len(rec.PANCiphertext) == 0:
		return store.TokenRecord{}, errors.New("vault: token record has no PAN ciphertext")
	}
	rec.ExpiresAt, rec.CreatedAt, rec.UpdatedAt = time.UnixMilli(expires), time.UnixMilli(created), time.UnixMilli(updated)
	return rec, nil
}

func unmarshalDomain(s string, d *store.Domain) error {
	if s == "{}" {
		*d = store.Domain{}
		return nil
	}
	return json.Unmarshal([]byte(s), d)
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const tokenColumns = sqlstore.TokenColumns

const insertToken = `INSERT INTO tokens (` + tokenColumns + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`

// vault is the token vault (store.Tokens) in the shared database.
type vault struct{ s *Store }

func (v vault) Insert(ctx context.Context, rec store.TokenRecord) error {
	args, err := sqlstore.TokenArgs(rec)
	if err != nil {
		return err
	}
	ctx, cancel := v.s.ctxFor(ctx)
	defer cancel()
	if _, err := v.s.pool.Exec(ctx, insertToken, args...); err != nil {
		if isUnique(err) {
			return fmt.Errorf("vault: inserting token: %w", store.ErrDuplicate)
		}
		return fmt.Errorf("vault: inserting token: %w", unavailable(err))
	}
	return nil
}

// InsertMany inserts many records in one transaction, sent as one batch.
func (v vault) InsertMany(ctx context.Context, recs []store.TokenRecord) error {
	err := v.s.inTx(ctx, store.OpTokenInsert, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, rec := range recs {
			args, err := sqlstore.TokenArgs(rec)
			if err != nil {
				return err
			}
			b.Queue(insertToken, args...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if isUnique(err) {
		return fmt.Errorf("vault: inserting token batch: %w", store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("vault: inserting token batch: %w", err)
	}
	return nil
}

func (v vault) Get(ctx context.Context, token string) (store.TokenRecord, error) {
	return v.one(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE token = $1`, token)
}

func (v vault) SetStatus(ctx context.Context, token string, status store.TokenStatus, now time.Time) (store.TokenRecord, error) {
	rec, err := v.one(ctx, `UPDATE tokens SET status = $1, updated_at = $2 WHERE token = $3 AND status <> 'deleted'
		RETURNING `+tokenColumns, string(status), now.UnixMilli(), token)
	if errors.Is(err, store.ErrNotFound) {
		if cur, gerr := v.Get(ctx, token); gerr == nil && cur.Status == store.TokenDeleted {
			return cur, store.ErrFinal
		}
	}
	return rec, err
}

// Use records one use in one conditional UPDATE: concurrent uses of a
// one-time token from any number of instances serialise on its row and
// the second finds no use left.
func (v vault) Use(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	rec, err := v.one(ctx, `UPDATE tokens SET use_count = use_count + 1, updated_at = $1
		WHERE token = $2 AND status = 'active' AND expires_at > $1 AND (max_uses = 0 OR use_count < max_uses)
		RETURNING `+tokenColumns, now.UnixMilli(), token)
	if errors.Is(err, store.ErrNotFound) {
		return store.TokenRecord{}, store.ErrNotUsable
	}
	return rec, err
}

func (v vault) FindByPANHash(ctx context.Context, hash []byte) ([]store.TokenRecord, error) {
	ctx, cancel := v.s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, v.s.pool, sqlstore.ScanToken, `SELECT `+tokenColumns+` FROM tokens WHERE pan_hash = $1 ORDER BY created_at`, hash)
	if err != nil {
		return nil, fmt.Errorf("vault: query by PAN hash: %w", err)
	}
	return out, nil
}

func (v vault) Count(ctx context.Context) (int, error) {
	ctx, cancel := v.s.ctxFor(ctx)
	defer cancel()
	var n int
	if err := v.s.pool.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("vault: counting tokens: %w", unavailable(err))
	}
	return n, nil
}

func (v vault) one(ctx context.Context, sql string, args ...any) (store.TokenRecord, error) {
	ctx, cancel := v.s.ctxFor(ctx)
	defer cancel()
	rows, err := v.s.pool.Query(ctx, sql, args...)
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: %w", unavailable(err))
	}
	defer rows.Close()
	rec, err := sqlstore.One(rows, sqlstore.ScanToken)
	return rec, unavailable(err)
}

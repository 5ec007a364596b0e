package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
)

// ReserveCancel records cancel or refund c and takes c.Amount off what
// remains of its sale, in one transaction. The sale's row lock orders
// racing cancels: the second re-reads what remains after the first.
func (s *Store) ReserveCancel(ctx context.Context, c store.Txn) (store.Txn, error) {
	if c.OriginalID <= 0 || c.Amount <= 0 {
		return store.Txn{}, fmt.Errorf("journal: reserving %d of transaction %d: %w", c.Amount, c.OriginalID, store.ErrExceeds)
	}
	c.State = store.Forwarded
	err := s.inTx(ctx, store.OpCancel, func(tx pgx.Tx) error {
		// The row first: a repeat is ErrDuplicate even when nothing remains.
		if err := tx.QueryRow(ctx, insertTxn+` RETURNING id`, s.insertArgs(&c)...).Scan(&c.ID); err != nil {
			if isUnique(err) {
				return store.ErrDuplicate
			}
			return err
		}
		now := s.msNow()
		var remaining int64
		err := tx.QueryRow(ctx, `UPDATE txns SET remaining = remaining - $1, updated_at = $2
			WHERE id = $3 AND state = 'approved' AND original_id = 0 AND remaining >= $1 RETURNING remaining`,
			c.Amount, now, c.OriginalID).Scan(&remaining)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrExceeds // the rollback undoes the insert
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insertEvent, c.OriginalID, now, "cancel_reserved",
			fmt.Sprintf("%d reserved by transaction %d, %d remains", c.Amount, c.ID, remaining))
		return err
	})
	if errors.Is(err, store.ErrDuplicate) {
		return s.duplicateOf(ctx, c.Key)
	}
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reserving %d of transaction %d: %w", c.Amount, c.OriginalID, err)
	}
	return c, nil
}

// ReleaseCancel gives the amount reserved by cancel cancelID back to its
// sale and records the cancel settled, in one transaction; at most once.
func (s *Store) ReleaseCancel(ctx context.Context, cancelID int64, st store.State, rc, why string) error {
	err := s.inTx(ctx, store.OpRestore, func(tx pgx.Tx) error {
		now := s.msNow()
		var origID, amount int64
		err := tx.QueryRow(ctx, `UPDATE txns SET state = $1, rc = $2, updated_at = $3
			WHERE id = $4 AND state = 'forwarded' AND original_id > 0 AND owner IN ($5, '') RETURNING original_id, amount`,
			string(st), rc, now, cancelID, s.inst.Name).Scan(&origID, &amount)
		if errors.Is(err, pgx.ErrNoRows) {
			return s.notOwned(ctx, cancelID, store.ErrNotReserved)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE txns SET remaining = LEAST(amount, remaining + $1), updated_at = $2 WHERE id = $3`,
			amount, now, origID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertEvent, origID, now, "cancel_released",
			fmt.Sprintf("%d given back by transaction %d: %s", amount, cancelID, why)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insertEvent, cancelID, now, string(st), why)
		return err
	})
	if err != nil {
		return fmt.Errorf("journal: releasing cancel %d: %w", cancelID, err)
	}
	return nil
}

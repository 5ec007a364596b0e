package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// ReserveCancel records cancel or refund c (state store.Forwarded) and takes
// c.Amount off what remains of the approved sale c.OriginalID, in one
// step: after a crash either both happened or neither. While c stays
// store.Forwarded it holds that amount; ReleaseCancel gives it back. Errors:
// store.ErrDuplicate with the stored row when c's key is journaled already,
// store.ErrExceeds (nothing recorded) when c.Amount is more than remains.
func (j *journal) ReserveCancel(ctx context.Context, c store.Txn) (store.Txn, error) {
	if err := sqlstore.CheckReserve(c); err != nil {
		return store.Txn{}, err
	}
	c.State = store.Forwarded
	err := j.execChecked(ctx, store.OpCancel, func(tx *sql.Tx) error {
		// The refusals first, before anything is written; a repeat is
		// store.ErrDuplicate even when nothing remains.
		var remaining int64
		err := j.db.TxQueryRow(tx, `SELECT remaining FROM txns WHERE id = ? AND state = 'approved' AND original_id = 0`,
			c.OriginalID).Scan(&remaining)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err != nil || remaining < c.Amount {
			return j.refusedCancel(tx, c.Key)
		}
		if err := j.insert(tx, &c); err != nil {
			return err // errKeyTaken: nothing written
		}
		now := j.now().UnixMilli()
		res, err := j.db.TxExec(tx, `UPDATE txns SET remaining = remaining - ?, updated_at = ? WHERE id = ? AND remaining >= ?`,
			c.Amount, now, c.OriginalID, c.Amount)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			// Checked above in this transaction: not a refusal but a fault.
			return fmt.Errorf("the sale's remaining amount changed under the reservation (%d rows, %v)", n, err)
		}
		return j.event(tx, c.OriginalID, now, "cancel_reserved", sqlstore.ReservedDetail(c.Amount, c.ID, remaining-c.Amount))
	})
	if errors.Is(err, errKeyTaken) || sqlitedb.IsUnique(err) {
		return j.duplicateOf(ctx, c.Key)
	}
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reserving %d of transaction %d: %w", c.Amount, c.OriginalID, err)
	}
	return c, nil
}

// refusedCancel is why cancel key k cannot reserve: errKeyTaken when k is
// journaled already, else store.ErrExceeds.
func (j *journal) refusedCancel(tx *sql.Tx, k store.Key) error {
	var one int
	err := j.db.TxQueryRow(tx, `SELECT 1 FROM txns WHERE terminal_id = ? AND stan = ? AND tx_time = ? AND mti = ?`,
		k.TerminalID, k.STAN, k.TxTime, k.MTI).Scan(&one)
	switch {
	case err == nil:
		return errKeyTaken
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrExceeds
	}
	return err
}

// ReleaseCancel gives the amount reserved by cancel cancelID back to its
// sale and records the cancel as settled (state st, response code rc), in
// one step. store.ErrNotReserved when the cancel holds no reservation (it is not
// store.Forwarded: answered or released already), so a reservation is given back
// at most once.
func (j *journal) ReleaseCancel(ctx context.Context, cancelID int64, st store.State, rc, why string) error {
	err := j.execChecked(ctx, store.OpRestore, func(tx *sql.Tx) error {
		now := j.now().UnixMilli()
		var origID, amount int64
		err := j.db.TxQueryRow(tx, `UPDATE txns SET state = ?, rc = ?, updated_at = ?
			WHERE id = ? AND state = 'forwarded' AND original_id > 0 AND owner IN (?, '') RETURNING original_id, amount`,
			string(st), rc, now, cancelID, j.inst.Name).Scan(&origID, &amount)
		if errors.Is(err, sql.ErrNoRows) {
			return j.notOwned(tx, cancelID, store.ErrNotReserved)
		}
		if err != nil {
			return err
		}
		if _, err := j.db.TxExec(tx, `UPDATE txns SET remaining = MIN(amount, remaining + ?), updated_at = ? WHERE id = ?`,
			amount, now, origID); err != nil {
			return err
		}
		if err := j.event(tx, origID, now, "cancel_released", sqlstore.ReleasedDetail(amount, cancelID, why)); err != nil {
			return err
		}
		return j.event(tx, cancelID, now, string(st), why)
	})
	if err != nil {
		return fmt.Errorf("journal: releasing cancel %d: %w", cancelID, err)
	}
	return nil
}

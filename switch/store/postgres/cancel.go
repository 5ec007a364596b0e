package postgres

import (
	"context"
	"fmt"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// reserveCancel is ReserveCancel's one statement: the sale's row locked
// while it is approved and covers the amount (a racing cancel's commit is
// waited for and what remains re-read), the cancel's row inserted only
// then and only under a new key, the amount taken off only when the row
// went in, with the sale's event. A refused reservation writes nothing
// (the row lock lasts until its group commits); the caller tells why
// afterwards.
// Parameters are insertTxn's ($8 the amount, $24 the sale, $26 now).
const reserveCancel = `WITH o AS (SELECT id FROM txns WHERE id = $24 AND state = 'approved' AND original_id = 0 AND remaining >= $8
		FOR UPDATE),
	i AS (INSERT INTO txns (` + insertColumns + `) SELECT ` + insertCasts + ` FROM o
		ON CONFLICT ON CONSTRAINT txns_key DO NOTHING RETURNING id),
	u AS (UPDATE txns SET remaining = txns.remaining - $8, updated_at = $26 FROM i WHERE txns.id = $24 RETURNING txns.remaining),
	e AS (INSERT INTO events (txn_id, at, kind, detail)
		SELECT $24, $26, 'cancel_reserved', format('%s reserved by transaction %s, %s remains', $8, i.id, u.remaining) FROM i, u)
	SELECT i.id FROM i, u`

// ReserveCancel records cancel or refund c and takes c.Amount off what
// remains of its sale, in one statement of the group commit. The sale's
// row lock orders racing cancels: the second re-reads what remains after
// the first. A repeated key is ErrDuplicate even when nothing remains.
func (s *Store) ReserveCancel(ctx context.Context, c store.Txn) (store.Txn, error) {
	if err := sqlstore.CheckReserve(c); err != nil {
		return store.Txn{}, err
	}
	c.State = store.Forwarded
	c.ID = 0
	n, err := s.exec(ctx, store.OpCancel, reserveCancel, scanOne(&c.ID), s.insertArgs(&c)...)
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reserving %d of transaction %d: %w", c.Amount, c.OriginalID, err)
	}
	if n == 1 {
		return c, nil
	}
	// Nothing touched: a key recorded already, or not enough remains.
	stored, err := s.FindByKey(ctx, c.Key)
	return sqlstore.RefusedCancel(c, stored, err)
}

// releaseCancel is ReleaseCancel's one statement: the cancel settled
// while it is forwarded and this instance's, its amount given back to
// the sale, and both events.
const releaseCancel = `WITH c AS (UPDATE txns SET state = $1, rc = $2, updated_at = $3
		WHERE id = $4 AND state = 'forwarded' AND original_id > 0 AND owner IN ($5, '') RETURNING original_id, amount),
	o AS (UPDATE txns SET remaining = LEAST(txns.amount, txns.remaining + c.amount), updated_at = $3
		FROM c WHERE txns.id = c.original_id),
	e AS (INSERT INTO events (txn_id, at, kind, detail)
		SELECT original_id, $3, 'cancel_released', format('%s given back by transaction %s: %s', amount, $4::bigint, $6::text) FROM c
		UNION ALL SELECT $4, $3, $1, $6 FROM c)
	SELECT count(*) FROM c`

// ReleaseCancel gives the amount reserved by cancel cancelID back to its
// sale and records the cancel settled, in one statement of the group
// commit; at most once.
func (s *Store) ReleaseCancel(ctx context.Context, cancelID int64, st store.State, rc, why string) error {
	var released int64
	_, err := s.exec(ctx, store.OpRestore, releaseCancel, scanOne(&released), string(st), rc, s.msNow(), cancelID, s.inst.Name, why)
	if err == nil && released != 1 {
		err = s.notOwned(ctx, cancelID, store.ErrNotReserved)
	}
	if err != nil {
		return fmt.Errorf("journal: releasing cancel %d: %w", cancelID, err)
	}
	return nil
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const safColumns = sqlstore.SAFColumns

// Enqueue adds a give-back and its event in one statement of the group
// commit, owned by this instance until NextAt plus its lease.
func (s *Store) Enqueue(ctx context.Context, it store.SAFItem) (int64, error) {
	now := s.msNow()
	var id int64
	_, err := s.exec(ctx, store.OpEnqueue, `WITH i AS (INSERT INTO saf (txn_id, route, kind, amount, attempts, next_at, expires_at,
			state, stan, tx_time, created_at, updated_at, owner, lease_until)
			VALUES ($1,$2,$3,$4,0,$5,$6,'pending',$7,$8,$9,$9,$10,$11) RETURNING id, txn_id),
		e AS (INSERT INTO events (txn_id, at, kind, detail) SELECT txn_id, $9, 'reversal_queued', $12 FROM i)
		SELECT id FROM i`, scanOne(&id),
		it.TxnID, it.Route, it.Kind, it.Amount, it.NextAt.UnixMilli(), it.ExpiresAt.UnixMilli(), it.STAN, it.TxTime, now,
		s.inst.Name, it.NextAt.Add(s.inst.Lease).UnixMilli(), sqlstore.QueuedDetail(it))
	if err != nil {
		return 0, fmt.Errorf("journal: queueing %s for transaction %d: %w", it.Kind, it.TxnID, err)
	}
	return id, nil
}

// Claim leases route's due pending items to this instance (its own and
// those whose lease lapsed). Rows a concurrent claim holds are skipped
// (FOR UPDATE SKIP LOCKED), so an item goes to one instance.
func (s *Store) Claim(ctx context.Context, route string, now time.Time, lease time.Duration, limit int) ([]store.SAFItem, error) {
	// A read first: an idle queue (the usual case, polled by every
	// worker) costs the group committer nothing.
	var due bool
	rctx, cancel := s.ctxFor(ctx)
	defer cancel()
	if err := s.pool.QueryRow(rctx, `SELECT EXISTS (SELECT 1 FROM saf WHERE state = 'pending' AND route = $1 AND next_at <= $2
		AND (owner = $3 OR lease_until <= $2))`, route, now.UnixMilli(), s.inst.Name).Scan(&due); err != nil {
		return nil, fmt.Errorf("journal: looking for due SAF items of %s: %w", route, unavailable(err))
	}
	if !due {
		return nil, nil
	}
	var out []store.SAFItem
	_, err := s.exec(ctx, store.OpClaim, `UPDATE saf SET owner = $1, lease_until = $2
		WHERE id IN (SELECT id FROM saf WHERE state = 'pending' AND route = $3 AND next_at <= $4
			AND (owner = $1 OR lease_until <= $4) ORDER BY next_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)
		RETURNING `+safColumns, func(rows pgx.Rows) error {
		var err error
		out, err = sqlstore.All(rows, sqlstore.ScanSAF)
		return err
	}, s.inst.Name, now.Add(lease).UnixMilli(), route, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("journal: claiming SAF items of %s: %w", route, err)
	}
	sqlstore.SortClaimed(out)
	return out, nil
}

// AssignFirstAttempt records the DE 11 / DE 7 of an item's first attempt
// while this instance owns it.
func (s *Store) AssignFirstAttempt(ctx context.Context, id int64, stan, txTime string) error {
	n, err := s.exec(ctx, store.OpSAFAssign, `UPDATE saf SET stan = $1, tx_time = $2 WHERE id = $3 AND owner = $4`,
		nil, stan, txTime, id, s.inst.Name)
	if err == nil && n != 1 {
		err = store.ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("journal: assigning the first attempt of SAF item %d: %w", id, err)
	}
	return nil
}

// Result records an attempt and its event in one statement, while this
// instance owns the item.
func (s *Store) Result(ctx context.Context, it store.SAFItem, state string, next time.Time, lastErr string) error {
	now := s.msNow()
	lease := sqlstore.ResultLease(state, next, s.inst.Lease)
	kind, detail := sqlstore.ResultEvent(it, state, lastErr)
	var updated int64
	_, err := s.exec(ctx, store.OpSAFResult, `WITH u AS (UPDATE saf SET state = $1, attempts = attempts + 1, next_at = $2,
			last_error = $3, updated_at = $4, lease_until = $5 WHERE id = $6 AND owner = $7 RETURNING txn_id),
		e AS (INSERT INTO events (txn_id, at, kind, detail) SELECT txn_id, $4, $8, $9 FROM u)
		SELECT count(*) FROM u`, scanOne(&updated),
		state, next.UnixMilli(), lastErr, now, lease, it.ID, s.inst.Name, kind, detail)
	if err == nil && updated != 1 {
		err = store.ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("journal: recording attempt %d of SAF item %d: %w", it.Attempts+1, it.ID, err)
	}
	return nil
}

// List lists items in a state.
func (s *Store) List(ctx context.Context, state string) ([]store.SAFItem, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, s.pool, sqlstore.ScanSAF, `SELECT `+safColumns+` FROM saf WHERE state = $1 ORDER BY id`, state)
	if err != nil {
		return nil, fmt.Errorf("journal: reading SAF queue: %w", err)
	}
	return out, nil
}

// Depth counts pending items.
func (s *Store) Depth(ctx context.Context) (int, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM saf WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("journal: SAF depth: %w", unavailable(err))
	}
	return n, nil
}

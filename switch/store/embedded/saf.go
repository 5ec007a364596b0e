package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const safColumns = sqlstore.SAFColumns

// AssignFirstAttempt durably records the DE 11 / DE 7 of an item's first
// attempt, while this instance owns it.
func (j *journal) AssignFirstAttempt(ctx context.Context, id int64, stan, txTime string) error {
	err := j.exec1(ctx, store.OpSAFAssign, func(tx *sql.Tx) error {
		res, err := j.db.TxExec(tx, `UPDATE saf SET stan = ?, tx_time = ? WHERE id = ? AND owner = ?`, stan, txTime, id, j.inst.Name)
		if err != nil {
			return err
		}
		return owned(res)
	})
	if err != nil {
		return fmt.Errorf("journal: assigning the first attempt of SAF item %d: %w", id, err)
	}
	return nil
}

// owned is store.ErrLeaseLost when an owner-checked update touched no row.
func owned(res sql.Result) error {
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return store.ErrLeaseLost
	}
	return nil
}

// Enqueue adds a give-back to the store-and-forward queue durably, owned by
// this instance until its NextAt plus the instance's lease.
func (j *journal) Enqueue(ctx context.Context, it store.SAFItem) (int64, error) {
	now := j.now()
	var id int64
	err := j.execChecked(ctx, store.OpEnqueue, func(tx *sql.Tx) error {
		if err := j.db.TxQueryRow(tx, `INSERT INTO saf (txn_id, route, kind, amount, attempts, next_at, expires_at, state, stan, tx_time,
			created_at, updated_at, owner, lease_until) VALUES (?,?,?,?,0,?,?,'pending',?,?,?,?,?,?) RETURNING id`, it.TxnID, it.Route, it.Kind, it.Amount,
			it.NextAt.UnixMilli(), it.ExpiresAt.UnixMilli(), it.STAN, it.TxTime, now.UnixMilli(), now.UnixMilli(),
			j.inst.Name, it.NextAt.Add(j.inst.Lease).UnixMilli()).Scan(&id); err != nil {
			return err
		}
		return j.event(tx, it.TxnID, now.UnixMilli(), "reversal_queued", sqlstore.QueuedDetail(it))
	})
	if err != nil {
		return 0, fmt.Errorf("journal: queueing %s for transaction %d: %w", it.Kind, it.TxnID, err)
	}
	return id, nil
}

// Claim leases route's due pending items to this instance: its own and
// those whose lease lapsed. One statement, so two instances never claim
// the same item (SQLite has one writer at a time).
func (j *journal) Claim(ctx context.Context, route string, now time.Time, lease time.Duration, limit int) ([]store.SAFItem, error) {
	// A read first: an idle queue costs the group committer nothing.
	var due int
	err := j.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM saf WHERE state = 'pending' AND route = ? AND next_at <= ?
		AND (owner = ? OR lease_until <= ?) LIMIT 1)`, route, now.UnixMilli(), j.inst.Name, now.UnixMilli()).Scan(&due)
	if err != nil {
		return nil, fmt.Errorf("journal: looking for due SAF items of %s: %w", route, err)
	}
	if due == 0 {
		return nil, nil
	}
	var out []store.SAFItem
	err = j.exec1(ctx, store.OpClaim, func(tx *sql.Tx) error {
		out = nil
		rows, err := j.db.TxQuery(tx, `UPDATE saf SET owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM saf WHERE state = 'pending' AND route = ? AND next_at <= ?
				AND (owner = ? OR lease_until <= ?) ORDER BY next_at, id LIMIT ?)
			RETURNING `+safColumns, j.inst.Name, now.Add(lease).UnixMilli(), route, now.UnixMilli(), j.inst.Name, now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = sqlstore.All(rows, sqlstore.ScanSAF)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: claiming SAF items of %s: %w", route, err)
	}
	sqlstore.SortClaimed(out)
	return out, nil
}

// List lists items in a state (the admin API's manual-review list).
func (j *journal) List(ctx context.Context, state string) ([]store.SAFItem, error) {
	out, err := all(ctx, j.db, sqlstore.ScanSAF, `SELECT `+safColumns+` FROM saf WHERE state = ? ORDER BY id`, state)
	if err != nil {
		return nil, fmt.Errorf("journal: reading SAF queue: %w", err)
	}
	return out, nil
}

// Depth counts pending items.
func (j *journal) Depth(ctx context.Context) (int, error) {
	var n int
	err := j.db.QueryRow(ctx, `SELECT count(*) FROM saf WHERE state = 'pending'`).Scan(&n)
	return n, err
}

// Result records an attempt: done (acknowledged), retry at next (leased to
// this instance until next plus its lease), or review (expired).
func (j *journal) Result(ctx context.Context, it store.SAFItem, state string, next time.Time, lastErr string) error {
	now := j.now().UnixMilli()
	lease := sqlstore.ResultLease(state, next, j.inst.Lease)
	err := j.execChecked(ctx, store.OpSAFResult, func(tx *sql.Tx) error {
		res, err := j.db.TxExec(tx, `UPDATE saf SET state = ?, attempts = attempts + 1, next_at = ?, last_error = ?, updated_at = ?,
			lease_until = ? WHERE id = ? AND owner = ?`, state, next.UnixMilli(), lastErr, now, lease, it.ID, j.inst.Name)
		if err != nil {
			return err
		}
		if err := owned(res); err != nil {
			return err
		}
		kind, detail := sqlstore.ResultEvent(it, state, lastErr)
		return j.event(tx, it.TxnID, now, kind, detail)
	})
	if err != nil {
		return fmt.Errorf("journal: recording attempt %d of SAF item %d: %w", it.Attempts+1, it.ID, err)
	}
	return nil
}

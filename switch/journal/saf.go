package journal

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SAF item kinds: how the issuer is asked to give the money back.
const (
	KindReversal = "reversal" // 0420, repeated as 0421, answered 0430
	KindRefund   = "refund"   // 0200 with processing code 20 (prepaid hosts)
)

// SAF item states.
const (
	SAFPending = "pending"
	SAFDone    = "done"
	SAFReview  = "review" // expired unacknowledged: manual review
)

// SAFItem is one queued reversal of transaction TxnID.
type SAFItem struct {
	ID        int64
	TxnID     int64
	Route     string
	Kind      string
	Amount    int64
	Attempts  int
	NextAt    time.Time
	ExpiresAt time.Time
	State     string
	LastError string
	// STAN and TxTime are the issuer-leg DE 11 and DE 7 of the first
	// attempt, kept for every repeat so the issuer recognises a 0421 as the
	// repeat of what it may already have applied.
	STAN, TxTime string
	CreatedAt    time.Time
}

// SAFAssign durably records the DE 11 / DE 7 of an item's first attempt.
func (j *Journal) SAFAssign(ctx context.Context, id int64, stan, txTime string) error {
	return j.exec(ctx, OpSAFAssign, func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, `UPDATE saf SET stan = ?, tx_time = ? WHERE id = ?`, stan, txTime, id)
		return err
	})
}

// Enqueue adds a reversal to the store-and-forward queue durably.
func (j *Journal) Enqueue(ctx context.Context, it SAFItem) (int64, error) {
	now := j.now()
	var id int64
	err := j.exec(ctx, OpEnqueue, func(tx *sql.Tx) error {
		if err := j.db.TxQueryRow(tx, `INSERT INTO saf (txn_id, route, kind, amount, attempts, next_at, expires_at, state, stan, tx_time,
			created_at, updated_at) VALUES (?,?,?,?,0,?,?,'pending',?,?,?,?) RETURNING id`, it.TxnID, it.Route, it.Kind, it.Amount,
			it.NextAt.UnixMilli(), it.ExpiresAt.UnixMilli(), it.STAN, it.TxTime, now.UnixMilli(), now.UnixMilli()).Scan(&id); err != nil {
			return err
		}
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, it.TxnID, now.UnixMilli(),
			"reversal_queued", fmt.Sprintf("%s of %d queued on %s", it.Kind, it.Amount, it.Route))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("journal: queueing %s for transaction %d: %w", it.Kind, it.TxnID, err)
	}
	return id, nil
}

// Due lists pending items whose time has come.
func (j *Journal) Due(ctx context.Context, now time.Time, limit int) ([]SAFItem, error) {
	return j.safQuery(ctx, `WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?`, now.UnixMilli(), limit)
}

// DueOn lists route's pending items whose time has come, oldest due first.
func (j *Journal) DueOn(ctx context.Context, route string, now time.Time, limit int) ([]SAFItem, error) {
	return j.safQuery(ctx, `WHERE state = 'pending' AND route = ? AND next_at <= ? ORDER BY next_at LIMIT ?`, route, now.UnixMilli(), limit)
}

// SAFList lists items in a state (the admin API's manual-review list).
func (j *Journal) SAFList(ctx context.Context, state string) ([]SAFItem, error) {
	return j.safQuery(ctx, `WHERE state = ? ORDER BY id`, state)
}

// SAFDepth counts pending items.
func (j *Journal) SAFDepth(ctx context.Context) (int, error) {
	var n int
	err := j.db.QueryRow(ctx, `SELECT count(*) FROM saf WHERE state = 'pending'`).Scan(&n)
	return n, err
}

func (j *Journal) safQuery(ctx context.Context, where string, args ...any) ([]SAFItem, error) {
	rows, err := j.db.Query(ctx, `SELECT id, txn_id, route, kind, amount, attempts, next_at, expires_at, state,
		last_error, stan, tx_time, created_at FROM saf `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: reading SAF queue: %w", err)
	}
	defer rows.Close()
	var out []SAFItem
	for rows.Next() {
		var it SAFItem
		var next, exp, created int64
		if err := rows.Scan(&it.ID, &it.TxnID, &it.Route, &it.Kind, &it.Amount, &it.Attempts, &next, &exp, &it.State,
			&it.LastError, &it.STAN, &it.TxTime, &created); err != nil {
			return nil, fmt.Errorf("journal: reading SAF item: %w", err)
		}
		it.NextAt, it.ExpiresAt, it.CreatedAt = time.UnixMilli(next), time.UnixMilli(exp), time.UnixMilli(created)
		out = append(out, it)
	}
	return out, rows.Err()
}

// SAFResult records an attempt: done (acknowledged), retry at next, or
// review (expired).
func (j *Journal) SAFResult(ctx context.Context, it SAFItem, state string, next time.Time, lastErr string) error {
	now := j.now().UnixMilli()
	return j.exec(ctx, OpSAFResult, func(tx *sql.Tx) error {
		if _, err := j.db.TxExec(tx, `UPDATE saf SET state = ?, attempts = attempts + 1, next_at = ?, last_error = ?, updated_at = ?
			WHERE id = ?`, state, next.UnixMilli(), lastErr, now, it.ID); err != nil {
			return err
		}
		kind := map[string]string{SAFDone: "reversal_acknowledged", SAFReview: "reversal_manual_review", SAFPending: "reversal_retry"}[state]
		detail := fmt.Sprintf("%s of %d on %s, attempt %d", it.Kind, it.Amount, it.Route, it.Attempts+1)
		if lastErr != "" {
			detail += ": " + lastErr
		}
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, it.TxnID, now, kind, detail)
		return err
	})
}

// Events returns a transaction's history (kind: detail), oldest first.
func (j *Journal) Events(ctx context.Context, id int64) ([]string, error) {
	rows, err := j.db.Query(ctx, `SELECT kind, detail FROM events WHERE txn_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("journal: reading events: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k, d string
		if err := rows.Scan(&k, &d); err != nil {
			return nil, err
		}
		out = append(out, k+": "+d)
	}
	return out, rows.Err()
}

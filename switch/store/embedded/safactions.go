package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// safDesk is the embedded store.SAFDesk: the operators' queries and
// actions on the SAF queue of the journal file.
type safDesk struct{ j *journal }

// Search lists the SAF items f selects, oldest first.
func (d safDesk) Search(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, error) {
	var w where
	w.eq("state", f.State, f.State != "")
	w.eq("route", f.Route, f.Route != "")
	w.eq("kind", f.Kind, f.Kind != "")
	w.eq("txn_id", f.TxnID, f.TxnID != 0)
	rows, err := d.j.db.Query(ctx, `SELECT `+safColumns+` FROM saf`+w.sql()+` ORDER BY id LIMIT ?`,
		append(w.args, store.SearchLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("journal: searching SAF items: %w", err)
	}
	return collectSAF(rows)
}

// Get reads one SAF item.
func (d safDesk) Get(ctx context.Context, id int64) (store.SAFItem, error) {
	rows, err := d.j.db.Query(ctx, `SELECT `+safColumns+` FROM saf WHERE id = ?`, id)
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: reading SAF item %d: %w", id, err)
	}
	items, err := collectSAF(rows)
	if err != nil {
		return store.SAFItem{}, err
	}
	if len(items) == 0 {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, store.ErrNotFound)
	}
	return items[0], nil
}

// Counts counts the items in each state.
func (d safDesk) Counts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, s := range store.SAFStates {
		out[s] = 0
	}
	rows, err := d.j.db.Query(ctx, `SELECT state, count(*) FROM saf GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("journal: counting SAF items: %w", err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

// RetryNow makes an item due at once (a review item pending again, with a
// new expiry).
func (d safDesk) RetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (store.SAFItem, error) {
	return d.act(ctx, id, []string{store.SAFPending, store.SAFReview}, func(tx *sql.Tx, it store.SAFItem, now time.Time) (string, string, error) {
		_, err := d.j.db.TxExec(tx, `UPDATE saf SET state = 'pending', next_at = ?,
			expires_at = CASE WHEN state = 'review' THEN ? ELSE expires_at END, updated_at = ? WHERE id = ?`,
			now.UnixMilli(), now.Add(expiry).UnixMilli(), now.UnixMilli(), id)
		return "reversal_retry_now", fmt.Sprintf("%s of %d on %s (was %s): retry now, by %s", it.Kind, it.Amount, it.Route, it.State, who), err
	})
}

// Resolve closes an item in review.
func (d safDesk) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	if strings.TrimSpace(reason) == "" {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, store.ErrNoReason)
	}
	return d.act(ctx, id, []string{store.SAFReview}, func(tx *sql.Tx, it store.SAFItem, now time.Time) (string, string, error) {
		note := fmt.Sprintf("resolved by %s: %s", who, reason)
		_, err := d.j.db.TxExec(tx, `UPDATE saf SET state = 'resolved', last_error = ?, updated_at = ? WHERE id = ?`, note, now.UnixMilli(), id)
		return "reversal_resolved", fmt.Sprintf("%s of %d on %s %s", it.Kind, it.Amount, it.Route, note), err
	})
}

// act runs one operator action on item id in one journal step: the item
// must be in one of states; change updates it and names the event added
// to the transaction's history.
func (d safDesk) act(ctx context.Context, id int64, states []string,
	change func(tx *sql.Tx, it store.SAFItem, now time.Time) (kind, detail string, err error)) (store.SAFItem, error) {
	err := d.j.exec(ctx, store.OpSAFAction, func(tx *sql.Tx) error {
		rows, err := d.j.db.TxQuery(tx, `SELECT `+safColumns+` FROM saf WHERE id = ?`, id)
		if err != nil {
			return err
		}
		items, err := collectSAF(rows)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return store.ErrNotFound
		}
		it := items[0]
		if !slices.Contains(states, it.State) {
			return fmt.Errorf("item is %s, want %s: %w", it.State, strings.Join(states, " or "), store.ErrSAFState)
		}
		now := d.j.now()
		kind, detail, err := change(tx, it, now)
		if err != nil {
			return err
		}
		_, err = d.j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, it.TxnID, now.UnixMilli(), kind, detail)
		return err
	})
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return d.Get(ctx, id)
}

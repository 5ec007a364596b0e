package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// safDesk is the embedded store.SAFDesk: the operators' queries and
// actions on the SAF queue of the journal file.
type safDesk struct{ j *journal }

// Search lists the SAF items f selects, oldest first.
func (d safDesk) Search(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, error) {
	where, args := store.Where(f.Conditions(), sqliteColumn, sqlitePlaceholder)
	rows, err := d.j.db.Query(ctx, `SELECT `+safColumns+` FROM saf`+where+` ORDER BY id LIMIT ?`,
		append(args, store.SearchLimit(f.Limit))...)
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
	out := store.ZeroSAFCounts()
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
	return d.act(ctx, id, func(it store.SAFItem) store.SAFAction { return store.RetryNowAction(it, who) },
		func(tx *sql.Tx, now time.Time) error {
			_, err := d.j.db.TxExec(tx, `UPDATE saf SET state = 'pending', next_at = ?,
			expires_at = CASE WHEN state = 'review' THEN ? ELSE expires_at END, updated_at = ? WHERE id = ?`,
				now.UnixMilli(), now.Add(expiry).UnixMilli(), now.UnixMilli(), id)
			return err
		})
}

// Resolve closes an item in review.
func (d safDesk) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	if strings.TrimSpace(reason) == "" {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, store.ErrNoReason)
	}
	return d.act(ctx, id, func(it store.SAFItem) store.SAFAction { return store.ResolveAction(it, who, reason) },
		func(tx *sql.Tx, now time.Time) error {
			_, err := d.j.db.TxExec(tx, `UPDATE saf SET state = 'resolved', last_error = ?, updated_at = ? WHERE id = ?`,
				store.ResolveNote(who, reason), now.UnixMilli(), id)
			return err
		})
}

// act runs one operator action on item id in one journal step: action
// says which states allow it and what history event it records, apply
// changes the item.
func (d safDesk) act(ctx context.Context, id int64, action func(store.SAFItem) store.SAFAction,
	apply func(tx *sql.Tx, now time.Time) error) (store.SAFItem, error) {
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
		a := action(items[0])
		if err := a.Check(items[0]); err != nil {
			return err
		}
		now := d.j.now()
		if err := apply(tx, now); err != nil {
			return err
		}
		_, err = d.j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, items[0].TxnID, now.UnixMilli(), a.Kind, a.Detail)
		return err
	})
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return d.Get(ctx, id)
}

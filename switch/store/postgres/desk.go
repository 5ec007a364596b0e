package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
)

// pgColumn renders a search column in PostgreSQL.
func pgColumn(c string) string {
	switch c {
	case store.CardFirst6Column:
		return "left(masked_pan, 6)"
	case store.CardLast4Column:
		return "right(masked_pan, 4)"
	}
	return c
}

func pgPlaceholder(n int) string { return fmt.Sprintf("$%d", n) }

// search renders conds and the limit for a query ordered by order.
func search(conds []store.Condition, order string, limit int) (string, []any) {
	where, args := store.Where(conds, pgColumn, pgPlaceholder)
	args = append(args, limit)
	return fmt.Sprintf("%s ORDER BY %s LIMIT $%d", where, order, len(args)), args
}

// Search lists the transactions f selects, newest first.
func (s *Store) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	tail, args := search(f.Conditions(), "id DESC", store.SearchLimit(f.Limit))
	return s.many(ctx, `SELECT `+txnColumns+` FROM txns`+tail, args...)
}

// History returns a transaction's events with their times, oldest first.
func (s *Store) History(ctx context.Context, txnID int64) ([]store.Event, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT at, kind, detail FROM events WHERE txn_id = $1 ORDER BY id`, txnID)
	if err != nil {
		return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, unavailable(err))
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Detail); err != nil {
			return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, unavailable(err))
	}
	return out, nil
}

// SAFDesk is the operators' view of the queue.
func (s *Store) SAFDesk() store.SAFDesk { return safDesk{s} }

// safDesk is the PostgreSQL store.SAFDesk.
type safDesk struct{ s *Store }

// Search lists the SAF items f selects, oldest first.
func (d safDesk) Search(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, error) {
	tail, args := search(f.Conditions(), "id", store.SearchLimit(f.Limit))
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT `+safColumns+` FROM saf`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: searching SAF items: %w", unavailable(err))
	}
	return collectSAF(rows)
}

// Get reads one SAF item.
func (d safDesk) Get(ctx context.Context, id int64) (store.SAFItem, error) {
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT `+safColumns+` FROM saf WHERE id = $1`, id)
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: reading SAF item %d: %w", id, unavailable(err))
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
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT state, count(*) FROM saf GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", unavailable(err))
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("journal: counting SAF items: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", unavailable(err))
	}
	return out, nil
}

// RetryNow makes an item due at once (a review item pending again, with a
// new expiry).
func (d safDesk) RetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (store.SAFItem, error) {
	return d.act(ctx, id, func(it store.SAFItem) store.SAFAction { return store.RetryNowAction(it, who) },
		func(tx pgx.Tx, now int64) error {
			_, err := tx.Exec(ctx, `UPDATE saf SET state = 'pending', next_at = $1,
			expires_at = CASE WHEN state = 'review' THEN $2 ELSE expires_at END, updated_at = $1 WHERE id = $3`,
				now, now+expiry.Milliseconds(), id)
			return err
		})
}

// Resolve closes an item in review.
func (d safDesk) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	if strings.TrimSpace(reason) == "" {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, store.ErrNoReason)
	}
	return d.act(ctx, id, func(it store.SAFItem) store.SAFAction { return store.ResolveAction(it, who, reason) },
		func(tx pgx.Tx, now int64) error {
			_, err := tx.Exec(ctx, `UPDATE saf SET state = 'resolved', last_error = $1, updated_at = $2 WHERE id = $3`,
				store.ResolveNote(who, reason), now, id)
			return err
		})
}

// act runs one operator action on item id in one transaction, the item
// locked: action says which states allow it and what history event it
// records, apply changes the item.
func (d safDesk) act(ctx context.Context, id int64, action func(store.SAFItem) store.SAFAction,
	apply func(tx pgx.Tx, now int64) error) (store.SAFItem, error) {
	err := d.s.inTx(ctx, store.OpSAFAction, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+safColumns+` FROM saf WHERE id = $1 FOR UPDATE`, id)
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
		now := d.s.msNow()
		if err := apply(tx, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insertEvent, items[0].TxnID, now, a.Kind, a.Detail)
		return err
	})
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return d.Get(ctx, id)
}

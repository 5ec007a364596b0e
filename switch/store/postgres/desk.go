package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
)

// filter builds a WHERE clause of conditions with numbered arguments.
type filter struct {
	conds []string
	args  []any
}

// add appends cond (with "?" standing for the next argument) when given.
func (f *filter) add(cond string, v any, given bool) {
	if !given {
		return
	}
	f.args = append(f.args, v)
	f.conds = append(f.conds, strings.Replace(cond, "?", fmt.Sprintf("$%d", len(f.args)), 1))
}

// sql is the WHERE clause and a LIMIT of limit.
func (f *filter) sql(limit int) string {
	where := ""
	if len(f.conds) > 0 {
		where = " WHERE " + strings.Join(f.conds, " AND ")
	}
	f.args = append(f.args, limit)
	return fmt.Sprintf("%s LIMIT $%d", where, len(f.args))
}

// Search lists the transactions f selects, newest first.
func (s *Store) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	var w filter
	w.add("rrn = ?", f.RRN, f.RRN != "")
	w.add("stan = ?", f.STAN, f.STAN != "")
	w.add("terminal_id = ?", f.TerminalID, f.TerminalID != "")
	w.add("merchant_id = ?", f.MerchantID, f.MerchantID != "")
	w.add("state = ?", string(f.State), f.State != "")
	w.add("route = ?", f.Route, f.Route != "")
	w.add("rc = ?", f.RC, f.RC != "")
	w.add("left(masked_pan, 6) = ?", f.CardFirst6, f.CardFirst6 != "")
	w.add("right(masked_pan, 4) = ?", f.CardLast4, f.CardLast4 != "")
	w.add("original_id = ?", f.OriginalID, f.OriginalID != 0)
	w.add("created_at >= ?", f.From.UnixMilli(), !f.From.IsZero())
	w.add("created_at < ?", f.To.UnixMilli(), !f.To.IsZero())
	limit := store.SearchLimit(f.Limit)
	where := w.sql(limit)
	where = strings.Replace(where, " LIMIT", " ORDER BY id DESC LIMIT", 1)
	return s.many(ctx, `SELECT `+txnColumns+` FROM txns`+where, w.args...)
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
	var w filter
	w.add("state = ?", f.State, f.State != "")
	w.add("route = ?", f.Route, f.Route != "")
	w.add("kind = ?", f.Kind, f.Kind != "")
	w.add("txn_id = ?", f.TxnID, f.TxnID != 0)
	where := strings.Replace(w.sql(store.SearchLimit(f.Limit)), " LIMIT", " ORDER BY id LIMIT", 1)
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT `+safColumns+` FROM saf`+where, w.args...)
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
	out := map[string]int{}
	for _, st := range store.SAFStates {
		out[st] = 0
	}
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
	return d.act(ctx, id, []string{store.SAFPending, store.SAFReview}, func(tx pgx.Tx, it store.SAFItem, now int64) (string, string, error) {
		_, err := tx.Exec(ctx, `UPDATE saf SET state = 'pending', next_at = $1,
			expires_at = CASE WHEN state = 'review' THEN $2 ELSE expires_at END, updated_at = $1 WHERE id = $3`,
			now, now+expiry.Milliseconds(), id)
		return "reversal_retry_now", fmt.Sprintf("%s of %d on %s (was %s): retry now, by %s", it.Kind, it.Amount, it.Route, it.State, who), err
	})
}

// Resolve closes an item in review.
func (d safDesk) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	if strings.TrimSpace(reason) == "" {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, store.ErrNoReason)
	}
	return d.act(ctx, id, []string{store.SAFReview}, func(tx pgx.Tx, it store.SAFItem, now int64) (string, string, error) {
		note := fmt.Sprintf("resolved by %s: %s", who, reason)
		_, err := tx.Exec(ctx, `UPDATE saf SET state = 'resolved', last_error = $1, updated_at = $2 WHERE id = $3`, note, now, id)
		return "reversal_resolved", fmt.Sprintf("%s of %d on %s %s", it.Kind, it.Amount, it.Route, note), err
	})
}

// act runs one operator action on item id in one transaction: the item,
// locked, must be in one of states; change updates it and names the event
// added to the transaction's history.
func (d safDesk) act(ctx context.Context, id int64, states []string,
	change func(tx pgx.Tx, it store.SAFItem, now int64) (kind, detail string, err error)) (store.SAFItem, error) {
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
		it := items[0]
		if !slices.Contains(states, it.State) {
			return fmt.Errorf("item is %s, want %s: %w", it.State, strings.Join(states, " or "), store.ErrSAFState)
		}
		now := d.s.msNow()
		kind, detail, err := change(tx, it, now)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insertEvent, it.TxnID, now, kind, detail)
		return err
	})
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return d.Get(ctx, id)
}

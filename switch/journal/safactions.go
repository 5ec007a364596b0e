package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SAFResolved is the state of an item an operator closed from manual
// review (SAFResolve): the money question was settled outside the switch.
const SAFResolved = "resolved"

// SAFStates are every SAF item state, for filters and gauges.
var SAFStates = []string{SAFPending, SAFReview, SAFDone, SAFResolved}

// SAFFilter selects SAF items; empty fields match everything.
type SAFFilter struct {
	State string
	Route string
	Kind  string // KindReversal or KindRefund
	TxnID int64
	// Limit caps the items returned, oldest first. Default 100, at most
	// MaxSearch.
	Limit int
}

// SAFSearch lists the SAF items f selects, oldest first.
func (j *Journal) SAFSearch(ctx context.Context, f SAFFilter) ([]SAFItem, error) {
	var where []string
	var args []any
	eq := func(col string, v any, set bool) {
		if set {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("state", f.State, f.State != "")
	eq("route", f.Route, f.Route != "")
	eq("kind", f.Kind, f.Kind != "")
	eq("txn_id", f.TxnID, f.TxnID != 0)
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := ""
	if len(where) > 0 {
		q = `WHERE ` + strings.Join(where, " AND ")
	}
	return j.safQuery(ctx, q+` ORDER BY id LIMIT ?`, append(args, min(limit, MaxSearch))...)
}

// SAFGet reads one SAF item; ErrNotFound when there is none.
func (j *Journal) SAFGet(ctx context.Context, id int64) (SAFItem, error) {
	items, err := j.safQuery(ctx, `WHERE id = ?`, id)
	if err != nil {
		return SAFItem{}, err
	}
	if len(items) == 0 {
		return SAFItem{}, ErrNotFound
	}
	return items[0], nil
}

// SAFCounts counts the items in each state (every state of SAFStates
// present, zero included).
func (j *Journal) SAFCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, s := range SAFStates {
		out[s] = 0
	}
	rows, err := j.db.Query(ctx, `SELECT state, count(*) FROM saf GROUP BY state`)
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

// ErrSAFState: the operator action does not apply to the item's state.
var ErrSAFState = errors.New("journal: SAF item is not in a state this action applies to")

// SAFRetryNow makes an item due at once: a pending item skips the rest of
// its back-off; an item in manual review goes back to pending with a new
// expiry (now + expiry), so the switch tries the issuer again. who is the
// operator, recorded with the time in the transaction's history.
func (j *Journal) SAFRetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (SAFItem, error) {
	return j.safAction(ctx, id, OpSAFResult, []string{SAFPending, SAFReview}, func(tx *sql.Tx, it SAFItem, now time.Time) (string, string, error) {
		_, err := j.db.TxExec(tx, `UPDATE saf SET state = 'pending', next_at = ?, expires_at = CASE WHEN state = 'review' THEN ? ELSE expires_at END,
			updated_at = ? WHERE id = ?`, now.UnixMilli(), now.Add(expiry).UnixMilli(), now.UnixMilli(), id)
		return "reversal_retry_now", fmt.Sprintf("%s of %d on %s (was %s): retry now, by %s", it.Kind, it.Amount, it.Route, it.State, who), err
	})
}

// SAFResolve closes an item in manual review: the operator settled it
// with the issuer outside the switch. reason is mandatory; it and who are
// kept in the item's last error and, with the time, in the transaction's
// history.
func (j *Journal) SAFResolve(ctx context.Context, id int64, who, reason string) (SAFItem, error) {
	if strings.TrimSpace(reason) == "" {
		return SAFItem{}, errors.New("journal: resolving a SAF item needs a reason")
	}
	return j.safAction(ctx, id, OpSAFResult, []string{SAFReview}, func(tx *sql.Tx, it SAFItem, now time.Time) (string, string, error) {
		note := fmt.Sprintf("resolved by %s: %s", who, reason)
		_, err := j.db.TxExec(tx, `UPDATE saf SET state = 'resolved', last_error = ?, updated_at = ? WHERE id = ?`, note, now.UnixMilli(), id)
		return "reversal_resolved", fmt.Sprintf("%s of %d on %s %s", it.Kind, it.Amount, it.Route, note), err
	})
}

// safAction runs one operator action on item id in one journal step: the
// item must be in one of states; change updates it and names the event.
func (j *Journal) safAction(ctx context.Context, id int64, op string, states []string,
	change func(tx *sql.Tx, it SAFItem, now time.Time) (kind, detail string, err error)) (SAFItem, error) {
	it, err := j.SAFGet(ctx, id)
	if err != nil {
		return SAFItem{}, err
	}
	err = j.exec(ctx, op, func(tx *sql.Tx) error {
		var state string
		if err := j.db.TxQueryRow(tx, `SELECT state FROM saf WHERE id = ?`, id).Scan(&state); err != nil {
			return err
		}
		if !slices.Contains(states, state) {
			return fmt.Errorf("item %d is %s, want %s: %w", id, state, strings.Join(states, " or "), ErrSAFState)
		}
		it.State = state
		now := j.now()
		kind, detail, err := change(tx, it, now)
		if err != nil {
			return err
		}
		_, err = j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, it.TxnID, now.UnixMilli(), kind, detail)
		return err
	})
	if err != nil {
		return SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return j.SAFGet(ctx, id)
}

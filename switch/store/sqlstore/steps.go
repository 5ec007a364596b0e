package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// The multi-step writes below (taking a lapsed instance over, an
// operator's SAF action) are the same on every backend; each backend runs
// them inside a transaction of its own (a savepoint in the embedded
// store's group commit, a transaction of their own on PostgreSQL) through
// Tx. They are rare (a lapsed lease, an operator's click): their texts
// are rendered per call.

// Tx is a backend's write transaction as the shared steps use it.
type Tx interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(q string, args ...any) (int64, error)
	// Query runs a statement returning rows, hands them to read and
	// closes them.
	Query(q string, read func(Rows) error, args ...any) error
}

// Bind writes q, whose arguments are marked "?", in d's placeholders.
func (d Dialect) Bind(q string) string {
	var b strings.Builder
	n := 0
	for {
		i := strings.IndexByte(q, '?')
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		n++
		b.WriteString(q[:i])
		b.WriteString(d.Param(n, ""))
		q = q[i+1:]
	}
}

const insertEvent = `INSERT INTO events (txn_id, at, kind, detail) VALUES (?, ?, ?, ?)`

// LapsedQuery lists the instances whose lease ended before a time, other
// than one, and the owners of in-flight work that have no heartbeat row at
// all (forgotten, or never heartbeated: lapsed since the epoch).
// Arguments: me, now (Unix ms), me, me.
const LapsedQuery = `SELECT name, lease_until FROM instances WHERE name <> ? AND lease_until < ?
	UNION SELECT owner, 0 FROM txns WHERE state = 'forwarded' AND owner NOT IN ('', ?) AND owner NOT IN (SELECT name FROM instances)
	UNION SELECT owner, 0 FROM saf WHERE state = 'pending' AND owner NOT IN ('', ?) AND owner NOT IN (SELECT name FROM instances)
	ORDER BY 1`

// HeartbeatQuery renews an instance's lease. Arguments: name,
// lease_until, now (Unix ms).
const HeartbeatQuery = `INSERT INTO instances (name, lease_until, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET lease_until = excluded.lease_until, updated_at = excluded.updated_at`

// TakeOver moves lapsed instance name's in-flight transactions and
// pending SAF items to instance me and forgets name (Instances.TakeOver),
// in tx: store.ErrLeaseHeld when name's lease has not ended by now. Of two
// survivors racing, the second finds the instance gone and its work moved
// and takes nothing.
func TakeOver(tx Tx, d Dialect, name, me string, now time.Time) ([]store.Txn, error) {
	if name == me {
		return nil, fmt.Errorf("instance %q taking over itself: %w", name, store.ErrLeaseHeld)
	}
	ms := now.UnixMilli()
	gone, err := tx.Exec(d.Bind(`DELETE FROM instances WHERE name = ? AND lease_until < ?`), name, ms)
	if err != nil {
		return nil, err
	}
	if gone == 0 {
		// Alive, or no heartbeat at all (its work is orphaned).
		var alive bool
		if err := tx.Query(d.Bind(`SELECT 1 FROM instances WHERE name = ?`), func(r Rows) error {
			alive = r.Next()
			return nil
		}, name); err != nil {
			return nil, err
		}
		if alive {
			return nil, store.ErrLeaseHeld
		}
	}
	var taken []store.Txn
	if err := tx.Query(d.Bind(`UPDATE txns SET owner = ?, updated_at = ? WHERE owner = ? AND state = 'forwarded' RETURNING `+TxnColumns),
		func(r Rows) (err error) {
			taken, err = All(r, ScanTxn)
			return err
		}, me, ms, name); err != nil {
		return nil, err
	}
	for _, t := range taken {
		if _, err := tx.Exec(d.Bind(insertEvent), t.ID, ms, TakenOverKind, TakenOverDetail(name, me)); err != nil {
			return nil, err
		}
	}
	_, err = tx.Exec(d.Bind(`UPDATE saf SET owner = ?, lease_until = 0 WHERE owner = ? AND state = 'pending'`), me, name)
	return taken, err
}

// Desk is what a backend gives the operators' SAF actions: its
// transaction and its read of an item.
type Desk interface {
	// Run runs step in one write transaction (store.OpSAFAction), at now.
	Run(ctx context.Context, step func(tx Tx, now time.Time) error) error
	// Get reads an item (SAFDesk.Get).
	Get(ctx context.Context, id int64) (store.SAFItem, error)
}

// RetryNow is SAFDesk.RetryNow on desk: a pending item due at once, a
// review item pending again until now plus expiry.
func RetryNow(ctx context.Context, desk Desk, d Dialect, id int64, who string, expiry time.Duration) (store.SAFItem, error) {
	return act(ctx, desk, d, id, func(it store.SAFItem) SAFAction { return RetryNowAction(it, who) },
		func(now time.Time) (string, []any) {
			return `UPDATE saf SET state = 'pending', next_at = ?, expires_at = CASE WHEN state = 'review' THEN ? ELSE expires_at END,
		updated_at = ? WHERE id = ?`, []any{now.UnixMilli(), now.Add(expiry).UnixMilli(), now.UnixMilli(), id}
		})
}

// Resolve is SAFDesk.Resolve on desk: an item in review closed by who for
// reason (store.ErrNoReason, before anything is begun, without one).
func Resolve(ctx context.Context, desk Desk, d Dialect, id int64, who, reason string) (store.SAFItem, error) {
	if strings.TrimSpace(reason) == "" {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, store.ErrNoReason)
	}
	return act(ctx, desk, d, id, func(it store.SAFItem) SAFAction { return ResolveAction(it, who, reason) },
		func(now time.Time) (string, []any) {
			return `UPDATE saf SET state = 'resolved', last_error = ?, updated_at = ? WHERE id = ?`,
				[]any{ResolveNote(who, reason), now.UnixMilli(), id}
		})
}

// act runs an operator action on item id in one of desk's transactions:
// the item read (locked where d.Lock says), checked, changed by update
// and recorded in its transaction's history; then read back.
func act(ctx context.Context, desk Desk, d Dialect, id int64, action func(store.SAFItem) SAFAction,
	update func(now time.Time) (string, []any)) (store.SAFItem, error) {
	err := desk.Run(ctx, func(tx Tx, now time.Time) error {
		var items []store.SAFItem
		if err := tx.Query(d.Bind(`SELECT `+SAFColumns+` FROM saf WHERE id = ?`+d.Lock), func(r Rows) (err error) {
			items, err = All(r, ScanSAF)
			return err
		}, id); err != nil {
			return err
		}
		it, a, err := DecideAction(items, action)
		if err != nil {
			return err
		}
		q, args := update(now)
		if _, err := tx.Exec(d.Bind(q), args...); err != nil {
			return err
		}
		_, err = tx.Exec(d.Bind(insertEvent), it.TxnID, now.UnixMilli(), a.Kind, a.Detail)
		return err
	})
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return desk.Get(ctx, id)
}

// Read hands rows to read and then reports their error (Tx.Query's
// implementations: they close the rows).
func Read(rows Rows, read func(Rows) error) error {
	if err := read(rows); err != nil {
		return err
	}
	return rows.Err()
}

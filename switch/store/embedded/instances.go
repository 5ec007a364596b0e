package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// Heartbeat renews this instance's lease until now plus its Lease.
func (j *journal) Heartbeat(ctx context.Context, now time.Time) error {
	err := j.exec1(ctx, store.OpHeartbeat, func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, `INSERT INTO instances (name, lease_until, updated_at) VALUES (?,?,?)
			ON CONFLICT (name) DO UPDATE SET lease_until = excluded.lease_until, updated_at = excluded.updated_at`,
			j.inst.Name, now.Add(j.inst.Lease).UnixMilli(), now.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("journal: heartbeat of %q: %w", j.inst.Name, err)
	}
	return nil
}

// Lapsed lists the other instances whose lease ended before now, and the
// owners of in-flight work that have no heartbeat at all.
func (j *journal) Lapsed(ctx context.Context, now time.Time) ([]store.Peer, error) {
	// Owners of in-flight work without a heartbeat row (forgotten, or
	// never heartbeated) count as lapsed since the epoch.
	rows, err := j.db.Query(ctx, `SELECT name, lease_until FROM instances WHERE name <> ? AND lease_until < ?
		UNION SELECT owner, 0 FROM txns WHERE state = 'forwarded' AND owner NOT IN ('', ?) AND owner NOT IN (SELECT name FROM instances)
		UNION SELECT owner, 0 FROM saf WHERE state = 'pending' AND owner NOT IN ('', ?) AND owner NOT IN (SELECT name FROM instances)
		ORDER BY 1`, j.inst.Name, now.UnixMilli(), j.inst.Name, j.inst.Name)
	if err != nil {
		return nil, fmt.Errorf("journal: listing lapsed instances: %w", err)
	}
	defer rows.Close()
	var out []store.Peer
	for rows.Next() {
		var p store.Peer
		var until int64
		if err := rows.Scan(&p.Name, &until); err != nil {
			return nil, fmt.Errorf("journal: listing lapsed instances: %w", err)
		}
		p.LeaseUntil = time.UnixMilli(until)
		out = append(out, p)
	}
	return out, rows.Err()
}

// TakeOver moves lapsed instance name's in-flight transactions and pending
// SAF items to this instance and forgets name, in one transaction.
func (j *journal) TakeOver(ctx context.Context, name string, now time.Time) ([]store.Txn, error) {
	if name == j.inst.Name {
		return nil, fmt.Errorf("journal: instance %q taking over itself: %w", name, store.ErrLeaseHeld)
	}
	var taken []store.Txn
	err := j.exec(ctx, store.OpTakeOver, func(tx *sql.Tx) error {
		taken = nil
		var until int64
		err := j.db.TxQueryRow(tx, `DELETE FROM instances WHERE name = ? AND lease_until < ? RETURNING lease_until`,
			name, now.UnixMilli()).Scan(&until)
		if errors.Is(err, sql.ErrNoRows) {
			// Alive, or no heartbeat at all (its work is orphaned).
			var n int
			if err := j.db.TxQueryRow(tx, `SELECT count(*) FROM instances WHERE name = ?`, name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return store.ErrLeaseHeld
			}
		} else if err != nil {
			return err
		}
		rows, err := j.db.TxQuery(tx, `UPDATE txns SET owner = ?, updated_at = ? WHERE owner = ? AND state = 'forwarded'
			RETURNING `+txnColumns, j.inst.Name, now.UnixMilli(), name)
		if err != nil {
			return err
		}
		if taken, err = collect(rows); err != nil {
			return err
		}
		for _, t := range taken {
			if _, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, t.ID, now.UnixMilli(),
				"taken_over", fmt.Sprintf("from lapsed instance %q by %q", name, j.inst.Name)); err != nil {
				return err
			}
		}
		_, err = j.db.TxExec(tx, `UPDATE saf SET owner = ?, lease_until = 0 WHERE owner = ? AND state = 'pending'`, j.inst.Name, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: taking over instance %q: %w", name, err)
	}
	return taken, nil
}

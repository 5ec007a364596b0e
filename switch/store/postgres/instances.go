package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// Heartbeat renews this instance's lease until now plus its Lease.
func (s *Store) Heartbeat(ctx context.Context, now time.Time) error {
	_, err := s.exec(ctx, store.OpHeartbeat, heartbeatQuery, nil, s.inst.Name, now.Add(s.inst.Lease).UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("journal: heartbeat of %q: %w", s.inst.Name, err)
	}
	return nil
}

var (
	heartbeatQuery = pg.Bind(sqlstore.HeartbeatQuery)
	lapsedQuery    = pg.Bind(sqlstore.LapsedQuery)
)

// Lapsed lists the other instances whose lease ended before now, and the
// owners of in-flight work without a heartbeat.
func (s *Store) Lapsed(ctx context.Context, now time.Time) ([]store.Peer, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, s.pool, sqlstore.ScanPeer, lapsedQuery, s.inst.Name, now.UnixMilli(), s.inst.Name, s.inst.Name)
	if err != nil {
		return nil, fmt.Errorf("journal: listing lapsed instances: %w", err)
	}
	return out, nil
}

// TakeOver moves lapsed instance name's in-flight transactions and pending
// SAF items to this instance and forgets name, in one transaction
// (sqlstore.TakeOver). Two survivors racing: the second waits on the
// instance row, finds it gone and its work moved, and takes nothing.
func (s *Store) TakeOver(ctx context.Context, name string, now time.Time) ([]store.Txn, error) {
	var taken []store.Txn
	err := s.inTx(ctx, store.OpTakeOver, func(tx pgx.Tx) (err error) {
		taken, err = sqlstore.TakeOver(pgTx{ctx, tx}, pg, name, s.inst.Name, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: taking over instance %q: %w", name, err)
	}
	return taken, nil
}

// pgTx is a transaction of its own as sqlstore's steps use it.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pgTx) Exec(q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(t.ctx, q, args...)
	return tag.RowsAffected(), err
}

func (t pgTx) Query(q string, read func(sqlstore.Rows) error, args ...any) error {
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return sqlstore.Read(rows, read)
}

// ReserveBlock reserves n numbers of the named sequence in one statement:
// the row lock orders racing reservations, so blocks never overlap.
func (s *Store) ReserveBlock(ctx context.Context, name string, n int64) (int64, error) {
	if n <= 0 {
		return 0, errors.New("journal: reserving an empty block")
	}
	var first int64
	_, err := s.exec(ctx, store.OpSequence, `INSERT INTO sequences AS q (name, next) VALUES ($1, 1 + $2::bigint)
		ON CONFLICT (name) DO UPDATE SET next = q.next + $2::bigint RETURNING next - $2::bigint`, scanOne(&first), name, n)
	if err != nil {
		return 0, fmt.Errorf("journal: reserving %d numbers of sequence %s: %w", n, name, err)
	}
	return first, nil
}

// InstanceNumber returns the instance number (0-99, the RRN prefix) the
// database keeps for instance name, assigning the lowest free one the
// first time. When all hundred are taken, the number of the instance
// whose heartbeat lapsed longest ago (or never came) is reassigned: RRNs
// stay unique regardless, since their sequence is shared.
func (s *Store) InstanceNumber(ctx context.Context, name string, now time.Time) (int, error) {
	var num int
	err := s.inTx(ctx, "instance_number", func(tx pgx.Tx) error {
		// One assignment at a time across instances.
		if _, err := tx.Exec(ctx, `LOCK TABLE instance_numbers IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT number FROM instance_numbers WHERE name = $1`, name).Scan(&num)
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT n FROM generate_series(0, 99) AS n
			WHERE n NOT IN (SELECT number FROM instance_numbers) ORDER BY n LIMIT 1`).Scan(&num)
		if errors.Is(err, pgx.ErrNoRows) {
			err = tx.QueryRow(ctx, `DELETE FROM instance_numbers WHERE name = (
				SELECT m.name FROM instance_numbers m LEFT JOIN instances i ON i.name = m.name
				WHERE COALESCE(i.lease_until, 0) < $1 ORDER BY COALESCE(i.lease_until, 0), m.assigned_at LIMIT 1)
				RETURNING number`, now.UnixMilli()).Scan(&num)
			if errors.Is(err, pgx.ErrNoRows) {
				return errors.New("all 100 instance numbers belong to live instances")
			}
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO instance_numbers (name, number, assigned_at) VALUES ($1, $2, $3)`, name, num, now.UnixMilli())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres store: instance number of %q: %w", name, err)
	}
	return num, nil
}

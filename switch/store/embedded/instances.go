package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// Heartbeat renews this instance's lease until now plus its Lease.
func (j *journal) Heartbeat(ctx context.Context, now time.Time) error {
	err := j.exec1(ctx, store.OpHeartbeat, func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, sqlstore.HeartbeatQuery, j.inst.Name, now.Add(j.inst.Lease).UnixMilli(), now.UnixMilli())
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
	out, err := all(ctx, j.db, sqlstore.ScanPeer, sqlstore.LapsedQuery, j.inst.Name, now.UnixMilli(), j.inst.Name, j.inst.Name)
	if err != nil {
		return nil, fmt.Errorf("journal: listing lapsed instances: %w", err)
	}
	return out, nil
}

// TakeOver moves lapsed instance name's in-flight transactions and pending
// SAF items to this instance and forgets name, in one step
// (sqlstore.TakeOver).
func (j *journal) TakeOver(ctx context.Context, name string, now time.Time) ([]store.Txn, error) {
	var taken []store.Txn
	err := j.exec(ctx, store.OpTakeOver, func(tx *sql.Tx) (err error) {
		taken, err = sqlstore.TakeOver(sqliteTx{j.db, tx}, sqlite, name, j.inst.Name, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: taking over instance %q: %w", name, err)
	}
	return taken, nil
}

// sqliteTx is a group commit's transaction as sqlstore's steps use it.
type sqliteTx struct {
	db *sqlitedb.DB
	tx *sql.Tx
}

func (t sqliteTx) Exec(q string, args ...any) (int64, error) {
	res, err := t.db.TxExec(t.tx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t sqliteTx) Query(q string, read func(sqlstore.Rows) error, args ...any) error {
	rows, err := t.db.TxQuery(t.tx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return sqlstore.Read(rows, read)
}

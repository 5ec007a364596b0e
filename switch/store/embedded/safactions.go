package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// safDesk is the embedded store.SAFDesk: the operators' queries and
// actions on the SAF queue of the journal file.
type safDesk struct{ j *journal }

// Search lists the SAF items f selects, oldest first.
func (d safDesk) Search(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, error) {
	q, args := sqlite.Search(safColumns, "saf", sqlstore.SAFConditions(f), "", "id", store.SearchLimit(f.Limit))
	out, err := all(ctx, d.j.db, sqlstore.ScanSAF, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: searching SAF items: %w", err)
	}
	return out, nil
}

// Get reads one SAF item.
func (d safDesk) Get(ctx context.Context, id int64) (store.SAFItem, error) {
	rows, err := d.j.db.Query(ctx, `SELECT `+safColumns+` FROM saf WHERE id = ?`, id)
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: reading SAF item %d: %w", id, err)
	}
	defer rows.Close()
	it, err := sqlstore.One(rows, sqlstore.ScanSAF)
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return it, nil
}

// Counts counts the items in each state.
func (d safDesk) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := d.j.db.Query(ctx, `SELECT state, count(*) FROM saf GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", err)
	}
	defer rows.Close()
	return sqlstore.SAFCounts(rows)
}

// RetryNow makes an item due at once (sqlstore.RetryNow).
func (d safDesk) RetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (store.SAFItem, error) {
	return sqlstore.RetryNow(ctx, d, sqlite, id, who, expiry)
}

// Resolve closes an item in review (sqlstore.Resolve).
func (d safDesk) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	return sqlstore.Resolve(ctx, d, sqlite, id, who, reason)
}

// Run runs an operator's action in one journal step (under a savepoint of
// its group commit).
func (d safDesk) Run(ctx context.Context, step func(tx sqlstore.Tx, now time.Time) error) error {
	return d.j.exec(ctx, store.OpSAFAction, func(tx *sql.Tx) error { return step(sqliteTx{d.j.db, tx}, d.j.now()) })
}

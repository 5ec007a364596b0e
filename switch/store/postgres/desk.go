package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// pg is how the shared SQL is written for PostgreSQL: "$n" parameters,
// typed where no column types them; the card's digits by left and right.
var pg = sqlstore.Dialect{Param: pgParam, Column: pgColumn, Lock: " FOR UPDATE"}

func pgParam(n int, sqlType string) string {
	if sqlType != "" {
		return "$" + strconv.Itoa(n) + "::" + sqlType
	}
	return "$" + strconv.Itoa(n)
}

// pgColumn renders a search column in PostgreSQL.
func pgColumn(c string) string {
	switch c {
	case sqlstore.CardFirst6Column:
		return "left(masked_pan, 6)"
	case sqlstore.CardLast4Column:
		return "right(masked_pan, 4)"
	}
	return c
}

// Search lists the transactions f selects, newest first.
func (s *Store) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	q, args := pg.Search(txnColumns, "txns", sqlstore.TxnConditions(f), "", "id DESC", store.SearchLimit(f.Limit))
	return s.many(ctx, q, args...)
}

// History returns a transaction's events with their times, oldest first.
func (s *Store) History(ctx context.Context, txnID int64) ([]store.Event, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, s.pool, sqlstore.ScanEvent, `SELECT at, kind, detail FROM events WHERE txn_id = $1 ORDER BY id`, txnID)
	if err != nil {
		return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, err)
	}
	return out, nil
}

// Events returns a transaction's history (kind: detail), oldest first.
func (s *Store) Events(ctx context.Context, id int64) ([]string, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, s.pool, sqlstore.ScanEventLine, `SELECT kind, detail FROM events WHERE txn_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("journal: reading events: %w", err)
	}
	return out, nil
}

// SAFDesk is the operators' view of the queue.
func (s *Store) SAFDesk() store.SAFDesk { return safDesk{s} }

// safDesk is the PostgreSQL store.SAFDesk.
type safDesk struct{ s *Store }

// Search lists the SAF items f selects, oldest first.
func (d safDesk) Search(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, error) {
	q, args := pg.Search(safColumns, "saf", sqlstore.SAFConditions(f), "", "id", store.SearchLimit(f.Limit))
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, d.s.pool, sqlstore.ScanSAF, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: searching SAF items: %w", err)
	}
	return out, nil
}

// Get reads one SAF item.
func (d safDesk) Get(ctx context.Context, id int64) (store.SAFItem, error) {
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	items, err := all(ctx, d.s.pool, sqlstore.ScanSAF, `SELECT `+safColumns+` FROM saf WHERE id = $1`, id)
	if err == nil && len(items) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: SAF item %d: %w", id, err)
	}
	return items[0], nil
}

// Counts counts the items in each state.
func (d safDesk) Counts(ctx context.Context) (map[string]int, error) {
	ctx, cancel := d.s.ctxFor(ctx)
	defer cancel()
	rows, err := d.s.pool.Query(ctx, `SELECT state, count(*) FROM saf GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", unavailable(err))
	}
	defer rows.Close()
	out, err := sqlstore.SAFCounts(rows)
	if err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", unavailable(err))
	}
	return out, nil
}

// RetryNow makes an item due at once (sqlstore.RetryNow).
func (d safDesk) RetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (store.SAFItem, error) {
	return sqlstore.RetryNow(ctx, d, pg, id, who, expiry)
}

// Resolve closes an item in review (sqlstore.Resolve).
func (d safDesk) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	return sqlstore.Resolve(ctx, d, pg, id, who, reason)
}

// Run runs an operator's action in a transaction of its own (the item
// locked: pg.Lock).
func (d safDesk) Run(ctx context.Context, step func(tx sqlstore.Tx, now time.Time) error) error {
	return d.s.inTx(ctx, store.OpSAFAction, func(tx pgx.Tx) error { return step(pgTx{ctx, tx}, d.s.now()) })
}

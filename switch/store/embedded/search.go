package embedded

import (
	"context"
	"fmt"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// sqlite is how the shared SQL is written for SQLite: "?" parameters, the
// card's digits by substr.
var sqlite = sqlstore.Dialect{Param: func(int, string) string { return "?" }, Column: sqliteColumn}

// sqliteColumn renders a search column in SQLite.
func sqliteColumn(c string) string {
	switch c {
	case sqlstore.CardFirst6Column:
		return "substr(masked_pan, 1, 6)"
	case sqlstore.CardLast4Column:
		return "substr(masked_pan, -4)"
	}
	return c
}

// byRRN is sqlite for a search by RRN: through txns_rrn_given ("rrn <>
// ”" lets that partial index serve it), not through txns_state.
var byRRN = sqlstore.Dialect{Param: sqlite.Param, Column: func(c string) string {
	if c == "state" {
		return "+state"
	}
	return sqliteColumn(c)
}}

// searchStatement is the query of Search; ids are conditions on id that
// hold f's time window (idsCreated).
func searchStatement(f store.TxnFilter, ids []sqlstore.Condition) (string, []any) {
	conds := append(sqlstore.TxnConditions(f), ids...)
	if f.RRN != "" {
		return byRRN.Search(txnColumns, "txns", conds, " AND rrn <> ''", "id DESC", store.SearchLimit(f.Limit))
	}
	return sqlite.Search(txnColumns, "txns", conds, "", "id DESC", store.SearchLimit(f.Limit))
}

// Search lists the transactions f selects, newest first; a time window is
// searched in its id range (see idsCreated).
func (j *journal) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	ids, err := j.idsCreated(ctx, f.From, f.To)
	if err != nil {
		return nil, fmt.Errorf("journal: searching transactions: %w", err)
	}
	q, args := searchStatement(f, ids)
	out, err := collect(j.db.Query(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("journal: searching transactions: %w", err)
	}
	return out, nil
}

// historyRows are a transaction's events: the one its row keeps (seq 0,
// see first_event_at in schema.go), then its events rows by id.
const historyRows = `SELECT 0 AS seq, first_event_at AS at, first_event_kind AS kind, first_event_detail AS detail
	FROM txns WHERE id = ? AND first_event_at > 0
	UNION ALL SELECT id, at, kind, detail FROM events WHERE txn_id = ?`

// History returns a transaction's events with their times, oldest first.
func (j *journal) History(ctx context.Context, txnID int64) ([]store.Event, error) {
	out, err := all(ctx, j.db, sqlstore.ScanEvent, `SELECT at, kind, detail FROM (`+historyRows+`) ORDER BY seq`, txnID, txnID)
	if err != nil {
		return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, err)
	}
	return out, nil
}

// Events returns a transaction's history (kind: detail), oldest first.
func (j *journal) Events(ctx context.Context, id int64) ([]string, error) {
	out, err := all(ctx, j.db, sqlstore.ScanEventLine, `SELECT kind, detail FROM (`+historyRows+`) ORDER BY seq`, id, id)
	if err != nil {
		return nil, fmt.Errorf("journal: reading events: %w", err)
	}
	return out, nil
}

// all reads every row q selects on the reader pool with scan.
func all[T any](ctx context.Context, db *sqlitedb.DB, scan func(sqlstore.Row) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.All(rows, scan)
}

package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// sqliteColumn renders a search column in SQLite.
func sqliteColumn(c string) string {
	switch c {
	case store.CardFirst6Column:
		return "substr(masked_pan, 1, 6)"
	case store.CardLast4Column:
		return "substr(masked_pan, -4)"
	}
	return c
}

func sqlitePlaceholder(int) string { return "?" }

// searchStatement is the query of Search.
func searchStatement(f store.TxnFilter) (string, []any) {
	column := sqliteColumn
	if f.RRN != "" {
		// By RRN through txns_rrn_given, not through txns_state.
		column = func(c string) string {
			if c == "state" {
				return "+state"
			}
			return sqliteColumn(c)
		}
	}
	where, args := store.Where(f.Conditions(), column, sqlitePlaceholder)
	if f.RRN != "" {
		where += " AND rrn <> ''" // lets txns_rrn_given serve it
	}
	return `SELECT ` + txnColumns + ` FROM txns` + where + ` ORDER BY id DESC LIMIT ?`, append(args, store.SearchLimit(f.Limit))
}

// Search lists the transactions f selects, newest first.
func (j *journal) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	q, args := searchStatement(f)
	rows, err := j.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: searching transactions: %w", err)
	}
	return collect(rows)
}

// History returns a transaction's events with their times, oldest first.
func (j *journal) History(ctx context.Context, txnID int64) ([]store.Event, error) {
	rows, err := j.db.Query(ctx, `SELECT at, kind, detail FROM events WHERE txn_id = ? ORDER BY id`, txnID)
	if err != nil {
		return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, err)
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
	return out, rows.Err()
}

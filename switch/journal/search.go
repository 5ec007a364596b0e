package journal

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// TxnFilter selects journal rows for the operators' look-up; empty fields
// match everything. All fields given must match.
type TxnFilter struct {
	RRN        string // DE 37
	STAN       string // the terminal's DE 11
	TerminalID string // DE 41
	MerchantID string // DE 42
	State      State
	// From and To bound the creation time: From <= created < To; zero
	// means unbounded.
	From, To time.Time
	// Limit caps the rows returned, newest first. Default 100, at most
	// MaxSearch.
	Limit int
}

// MaxSearch is the most rows one SearchTxns returns.
const MaxSearch = 1000

// SearchTxns lists the transactions f selects, newest first.
func (j *Journal) SearchTxns(ctx context.Context, f TxnFilter) ([]Txn, error) {
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("rrn", f.RRN)
	eq("stan", f.STAN)
	eq("terminal_id", f.TerminalID)
	eq("merchant_id", f.MerchantID)
	eq("state", string(f.State))
	if !f.From.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, f.To.UnixMilli())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + txnColumns + ` FROM txns`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := j.db.Query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, min(limit, MaxSearch))...)
	if err != nil {
		return nil, fmt.Errorf("journal: searching transactions: %w", err)
	}
	return collect(rows)
}

// Event is one entry of a transaction's history.
type Event struct {
	At     time.Time
	Kind   string
	Detail string
}

// History returns a transaction's events with their times, oldest first.
func (j *Journal) History(ctx context.Context, txnID int64) ([]Event, error) {
	rows, err := j.db.Query(ctx, `SELECT at, kind, detail FROM events WHERE txn_id = ? ORDER BY id`, txnID)
	if err != nil {
		return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Detail); err != nil {
			return nil, fmt.Errorf("journal: reading the history of transaction %d: %w", txnID, err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

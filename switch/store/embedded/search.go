package embedded

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// where builds a WHERE clause of equalities: each condition given is
// added with its argument.
type where struct {
	conds []string
	args  []any
}

func (w *where) eq(col string, v any, given bool) {
	if given {
		w.conds = append(w.conds, col+" = ?")
		w.args = append(w.args, v)
	}
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(w.conds, " AND ")
}

// Search lists the transactions f selects, newest first.
func (j *journal) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	var w where
	w.eq("rrn", f.RRN, f.RRN != "")
	w.eq("stan", f.STAN, f.STAN != "")
	w.eq("terminal_id", f.TerminalID, f.TerminalID != "")
	w.eq("merchant_id", f.MerchantID, f.MerchantID != "")
	w.eq("state", string(f.State), f.State != "")
	w.eq("route", f.Route, f.Route != "")
	w.eq("rc", f.RC, f.RC != "")
	w.eq("substr(masked_pan, 1, 6)", f.CardFirst6, f.CardFirst6 != "")
	w.eq("substr(masked_pan, -4)", f.CardLast4, f.CardLast4 != "")
	w.eq("original_id", f.OriginalID, f.OriginalID != 0)
	if !f.From.IsZero() {
		w.conds, w.args = append(w.conds, "created_at >= ?"), append(w.args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		w.conds, w.args = append(w.conds, "created_at < ?"), append(w.args, f.To.UnixMilli())
	}
	rows, err := j.db.Query(ctx, `SELECT `+txnColumns+` FROM txns`+w.sql()+` ORDER BY id DESC LIMIT ?`,
		append(w.args, store.SearchLimit(f.Limit))...)
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

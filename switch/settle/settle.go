// Package settle builds the day's settlement files per issuer route from the journal.
package settle

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// Line is one settled transaction of an issuer route.
type Line struct {
	Kind string // store.EntrySale, EntryCancel, EntryRefund
	Txn  store.Txn
	// Amount is signed: sales positive, what went back negative.
	Amount int64
}

// Lines builds, per issuer route, the day's approved sales and what
// cancels and refunds gave back, from the journal (store.EntryOf: the
// same entries as the terminals' batch totals).
func Lines(ctx context.Context, j store.Lookup, day time.Time) (map[string][]Line, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, day.Location())
	txns, err := j.Between(ctx, from, from.AddDate(0, 0, 1))
	if err != nil {
		return nil, err
	}
	out := map[string][]Line{}
	for _, t := range txns {
		e, ok := store.EntryOf(t)
		if !ok {
			continue
		}
		out[t.Route] = append(out[t.Route], Line{Kind: e.Kind, Txn: t, Amount: e.Net()})
	}
	return out, nil
}

// Write writes one CSV per route into dir and returns the paths:
// the lines, then one total line per currency (counts and net amount,
// folded by store.CurrencyTotals like the terminals' batch totals).
func Write(lines map[string][]Line, day time.Time, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	routes := make([]string, 0, len(lines))
	for r := range lines {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	var paths []string
	for _, route := range routes {
		path := filepath.Join(dir, fmt.Sprintf("settlement-%s-%s.csv", day.Format("2006-01-02"), route))
		f, err := os.Create(path)
		if err != nil {
			return paths, fmt.Errorf("creating %s: %w", path, err)
		}
		w := csv.NewWriter(f)
		_ = w.Write([]string{"type", "txn_id", "time", "terminal_id", "merchant_id", "rrn", "approval_code", "masked_pan", "currency", "amount"})
		totals := store.CurrencyTotals{}
		for _, l := range lines[route] {
			t := l.Txn
			totals.Add(t)
			_ = w.Write([]string{l.Kind, strconv.FormatInt(t.ID, 10), t.CreatedAt.UTC().Format(time.RFC3339), t.TerminalID,
				t.MerchantID, t.RRN, t.ApprovalCode, t.MaskedPAN, t.Currency, strconv.FormatInt(l.Amount, 10)})
		}
		// One total line per currency: amounts in different currencies
		// are never added together.
		for _, cur := range totals.Currencies() {
			tt := totals[cur]
			_ = w.Write([]string{"total", "", "", "", "", "", "", fmt.Sprintf("sales=%d cancels=%d refunds=%d", tt.Sales, tt.Cancels, tt.Refunds),
				cur, strconv.FormatInt(tt.Net(), 10)})
		}
		w.Flush()
		if err := w.Error(); err != nil {
			_ = f.Close()
			return paths, fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

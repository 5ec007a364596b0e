package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// BenchmarkSaleWithHistory is BenchmarkSale's durable sale on a journal
// that already holds history (JOURNAL_HISTORY rows, default 0 and 1,000,000,
// answered sales over historyTerminals terminals) with the new sales'
// keys spread over the same terminals, as in the field: each Begin then
// lands on a key-index page of its own terminal, most of them not in
// SQLite's page cache.
func BenchmarkSaleWithHistory(b *testing.B) {
	sizes := []int{0, 1_000_000}
	if v := os.Getenv("JOURNAL_HISTORY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		sizes = []int{n}
	}
	for _, rows := range sizes {
		// One journal a size, shared by its runs: filling it takes longer
		// than the runs.
		dir := b.TempDir()
		prefill(b, dir, rows)
		var commits atomic.Int64
		s, err := OpenDir(dir, Options{Durable: true, Instance: store.Instance{Name: "test"},
			OnCommit: func(time.Duration, int, error) { commits.Add(1) }})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var sold atomic.Int64 // sales across runs: each gets a key of its own
		for _, par := range []int{16, 64} {
			b.Run(fmt.Sprintf("history=%d/inflight=%d", rows, par), func(b *testing.B) {
				base := sold.Add(int64(b.N)) - int64(b.N) + int64(rows)
				runSales(b, par, &commits, func(n int64, rem *int64) error {
					n += base
					r := benchRequest(n)
					r.TerminalID = fmt.Sprintf("T%07d", n%historyTerminals)
					r.STAN = fmt.Sprintf("%06d", (n/historyTerminals)%999999+1)
					r.TxTime = "1130120000"
					return journalSale(ctx, s, r, n, rem)
				})
			})
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// historyTerminals is how many terminals the history and the new sales
// spread over (the new sales' keys go on from the history's).
const historyTerminals = 20000

// prefill creates the journal in dir and fills it with rows answered
// sales, as a journal holds after a few days of traffic.
func prefill(b *testing.B, dir string, rows int) {
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	if rows == 0 {
		return
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO txns (terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount, currency, masked_pan,
			token, pan_key, pan_key_version, pan_ct, card_expiry, route, issuer_stan, issuer_tx_time, rrn, approval_code,
			rc, state, remaining, original_id, created_at, updated_at, auth_key, content_hash, owner, first_event_at,
			first_event_kind, first_event_detail)
		SELECT printf('T%07d', i % ?), printf('%06d', (i / ?) % 999999 + 1), '1130120000', '0200', 'pos', 'MERCHANT000001',
			'000000', 10000, '410', '476173******0119', '', 'journal-data-key', 1, randomblob(44), '2812', 'card-a',
			printf('%06d', i % 999999 + 1), '1130120000', printf('5123%08d', i), 'A1B2C3', '00', 'approved', 10000, 0,
			1764500000000 + i, 1764500000000 + i, '', printf('%064x', i), 'test', 1764500000000 + i, 'approved',
			'issuer answered 00'
		FROM n`, rows-1, historyTerminals, historyTerminals)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	b.Logf("prefilled %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
}

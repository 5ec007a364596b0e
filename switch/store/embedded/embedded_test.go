package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/storetest"
)

// TestConformance runs the store conformance suite on the embedded store:
// each Open is another handle on the same two files.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Open {
		dir := t.TempDir()
		return func(inst store.Instance) store.Store {
			s, err := OpenDir(dir, Options{Durable: true, Instance: inst})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	})
}

func open(t testing.TB, durable bool) *Store {
	t.Helper()
	return openAt(t, t.TempDir(), durable)
}

// openAt opens a handle on the store in dir (closed when the test ends).
func openAt(t testing.TB, dir string, durable bool) *Store {
	t.Helper()
	s, err := OpenDir(dir, Options{Durable: durable, Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func sale(stan string) store.Txn {
	return store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"}, ProcCode: "000000",
		Amount: 10000, Currency: "410", Route: "card-a", State: store.Forwarded}
}

// TestGroupCommit: many concurrent writers all become durable, in far
// fewer commits than writes.
func TestGroupCommit(t *testing.T) {
	s := open(t, true)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := s.Sales().Begin(ctx, sale(fmt.Sprintf("%06d", i+1))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	var n int
	_ = s.j.db.R.QueryRow(`SELECT count(*) FROM txns`).Scan(&n)
	if n != 200 {
		t.Fatalf("%d rows", n)
	}
}

// TestUniqueViolationIsTypedNotText: a duplicate key is told by SQLite's
// result code, so ErrDuplicate does not depend on the message's wording.
func TestUniqueViolationIsTypedNotText(t *testing.T) {
	s := open(t, false)
	_, err := s.j.db.W.Exec(`INSERT INTO sequences (name, next) VALUES ('x', 1), ('x', 2)`)
	if !sqlitedb.IsUnique(err) {
		t.Fatalf("primary key violation not recognised: %v", err)
	}
	if sqlitedb.IsUnique(errors.New("UNIQUE constraint failed: txns.id")) {
		t.Fatal("a look-alike message counted as a violation")
	}
	_, err = s.j.db.W.Exec(`INSERT INTO txns (terminal_id) VALUES ('x')`)
	if err == nil || sqlitedb.IsUnique(err) {
		t.Fatalf("a NOT NULL violation counted as unique: %v", err)
	}
}

// TestOpenAddsNewColumnsToAnOldFile: a journal file from before auth_key,
// content_hash and the owners opens, keeps its rows (owner "": recovered
// by whichever instance opens it) and records the new columns.
func TestOpenAddsNewColumnsToAnOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	old, removed := schema, map[string]bool{}
	for _, c := range addedColumns {
		if !removed[c.name] { // owner is in two tables: one call drops both
			old, removed[c.name] = removeLine(t, old, c.name), true
		}
	}
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO txns (terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount, currency,
		masked_pan, token, pan_key, pan_key_version, card_expiry, route, issuer_stan, issuer_tx_time, rrn, approval_code, rc,
		state, remaining, original_id, created_at, updated_at) VALUES
		('TERM0001','000001','1125101500','0200','terminal','M1','000000',100,'410','','','',0,'','card-a','','','','','00','approved',100,0,1,1),
		('TERM0001','000002','1125101500','0200','terminal','M1','000000',100,'410','','','',0,'','card-a','','','','','','forwarded',0,0,1,1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO saf (txn_id, route, kind, amount, next_at, expires_at, state, created_at, updated_at)
		VALUES (2, 'card-a', 'reversal', 100, 0, 9999999999999, 'pending', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "new"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	got, err := s.Sales().FindByKey(ctx, store.Key{TerminalID: "TERM0001", STAN: "000001", TxTime: "1125101500", MTI: "0200"})
	if err != nil || got.AuthKey != "" || got.ContentHash != "" || got.Owner != "" {
		t.Fatalf("old row: %+v %v", got, err)
	}
	if left, err := s.Lookup().InFlight(ctx); err != nil || len(left) != 1 || left[0].STAN != "000002" {
		t.Fatalf("an old row left in flight is not recovered: %+v %v", left, err)
	}
	if items, err := s.Queue().Claim(ctx, "card-a", got.CreatedAt, store.DefaultLease, 10); err != nil || len(items) != 1 {
		t.Fatalf("an old SAF item is not claimed: %+v %v", items, err)
	}
	r := sale("000003")
	r.AuthKey, r.ContentHash = "mac-a", "h"
	row, err := s.Sales().Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup().Get(ctx, row.ID); got.AuthKey != "mac-a" || got.ContentHash != "h" || got.Owner != "new" {
		t.Fatalf("new row: %+v", got)
	}
}

// removeLine drops the schema lines declaring column.
func removeLine(t *testing.T, text, column string) string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), column+" ") {
			continue
		}
		out = append(out, l)
	}
	if len(out) == len(strings.Split(text, "\n")) {
		t.Fatalf("schema has no column %s", column)
	}
	// A table's last columns gone: no comma before its closing parenthesis.
	return regexp.MustCompile(`,\s*\n\)`).ReplaceAllString(strings.Join(out, "\n"), "\n)")
}

func TestMalformedTokenRecordIsAnError(t *testing.T) {
	s := open(t, false)
	ctx := context.Background()
	r := store.TokenRecord{Token: "9999000000000001", PANKey: "pan-data", PANKeyVersion: 1, PANCiphertext: []byte{1},
		PANHash: []byte("h"), HashVersion: 1, Status: store.TokenActive, Kind: store.DeviceToken}
	if err := s.Tokens().Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE tokens SET status = 'weird'`, `UPDATE tokens SET status = 'active', domain = '{bad'`} {
		if _, err := s.v.w.Exec(q); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Tokens().Get(ctx, r.Token); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: Get err = %v, want a malformed-record error", q, err)
		}
	}
}

// BenchmarkJournal measures one sale's two journal writes (request before
// it leaves, outcome before the terminal hears it) from 64 concurrent
// transactions, with fsync at each grouped commit (durable) and without.
func BenchmarkJournal(b *testing.B) {
	for _, durable := range []bool{true, false} {
		name := "nofsync"
		if durable {
			name = "durable"
		}
		b.Run(name, func(b *testing.B) {
			s := open(b, durable)
			ctx := context.Background()
			var seq atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					r := sale(fmt.Sprintf("%06d", n%999999+1))
					r.TerminalID = fmt.Sprintf("T%07d", n/999999)
					row, err := s.Sales().Begin(ctx, r)
					if err != nil {
						b.Error(err)
						return
					}
					rem := int64(10000)
					if err := s.Sales().Set(ctx, row.ID, store.Update{State: store.Approved, RC: "00", Remaining: &rem}, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestFailedWriteIsUnavailable: a write the file refuses (here: its table
// is gone) is store.ErrUnavailable; a decision (a duplicate) is not.
func TestFailedWriteIsUnavailable(t *testing.T) {
	s := open(t, false)
	ctx := context.Background()
	row, err := s.Sales().Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sales().Begin(ctx, sale("000001")); !errors.Is(err, store.ErrDuplicate) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.j.db.W.Exec(`DROP TABLE events`); err != nil {
		t.Fatal(err)
	}
	if err := s.Sales().Event(ctx, row.ID, "note", "x"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a refused write: %v", err)
	}
}

// TestOnCommitSeesEachGroupCommit: OnCommit is told of every commit, with
// its writes.
func TestOnCommitSeesEachGroupCommit(t *testing.T) {
	dir := t.TempDir()
	storetest.OnCommit(t, func(onCommit func(time.Duration, int, error)) store.Store {
		s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}, OnCommit: onCommit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestCloseAnswersEveryWrite: a write that slipped into the queue as the
// journal closed used to wait for ever (nobody took it after the drain).
func TestCloseAnswersEveryWrite(t *testing.T) {
	s, err := OpenDir(t.TempDir(), Options{Durable: false, Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CloseAnswersEveryWrite(t, s)
}

package journal

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// approvedSale journals an approved sale of 10000 in scope.
func approvedSale(t *testing.T, j *Journal, stan string, scope Scope) Txn {
	t.Helper()
	s := sale(stan)
	s.Listener, s.TerminalID, s.MerchantID, s.AuthKey = scope.Listener, scope.TerminalID, scope.MerchantID, scope.AuthKey
	s.State, s.RRN, s.ApprovalCode, s.Remaining = Approved, "512345"+stan, "A1B2C3", s.Amount
	row, err := j.Begin(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func cancelRow(stan string, orig Txn, amount int64) Txn {
	return Txn{Key: Key{TerminalID: orig.TerminalID, STAN: stan, TxTime: "1125101600", MTI: "0400"},
		Listener: orig.Listener, MerchantID: orig.MerchantID, OriginalID: orig.ID, Amount: amount}
}

// TestReserveAndReleaseCancel: the reservation and the cancel row are one
// step; a release gives the amount back and settles the row once.
func TestReserveAndReleaseCancel(t *testing.T) {
	j := open(t, true)
	ctx := context.Background()
	s := approvedSale(t, j, "000001", Scope{TerminalID: "TERM0001"})
	c, err := j.ReserveCancel(ctx, cancelRow("000010", s, 4000))
	if err != nil || c.ID == 0 || c.State != Forwarded {
		t.Fatalf("%+v %v", c, err)
	}
	if got, _ := j.Get(ctx, s.ID); got.Remaining != 6000 {
		t.Fatalf("%d remains after reserving 4000", got.Remaining)
	}
	if dup, err := j.ReserveCancel(ctx, cancelRow("000010", s, 1000)); !errors.Is(err, ErrDuplicate) || dup.ID != c.ID {
		t.Fatalf("repeat: %+v %v", dup, err)
	}
	if _, err := j.ReserveCancel(ctx, cancelRow("000011", s, 7000)); !errors.Is(err, ErrExceeds) {
		t.Fatalf("more than remains: %v", err)
	}
	if _, err := j.FindByKey(ctx, cancelRow("000011", s, 7000).Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused reservation left its row: %v", err)
	}
	if got, _ := j.Get(ctx, s.ID); got.Remaining != 6000 {
		t.Fatalf("%d remains after a refused and a repeated reservation", got.Remaining)
	}
	if err := j.ReleaseCancel(ctx, c.ID, Answered, "96", "route gone"); err != nil {
		t.Fatal(err)
	}
	got, _ := j.Get(ctx, s.ID)
	row, _ := j.Get(ctx, c.ID)
	if got.Remaining != 10000 || row.State != Answered || row.RC != "96" {
		t.Fatalf("after release: %d remains, cancel %s %s", got.Remaining, row.State, row.RC)
	}
	if err := j.ReleaseCancel(ctx, c.ID, Failed, "96", "again"); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("second release: %v", err)
	}
	if got, _ := j.Get(ctx, s.ID); got.Remaining != 10000 {
		t.Fatalf("%d remains after a second release", got.Remaining)
	}
}

// TestFindersStayInScope: a cancel's and a refund's original is found only
// within its listener, terminal, merchant and MAC key; two sales with one
// RRN and approval code are ambiguous.
func TestFindersStayInScope(t *testing.T) {
	j := open(t, true)
	ctx := context.Background()
	home := Scope{Listener: "keyed", TerminalID: "TERM0001", MerchantID: "M1", AuthKey: "mac-a"}
	s := approvedSale(t, j, "000001", home)
	others := map[string]Scope{
		"listener": {Listener: "terminal", TerminalID: "TERM0001", MerchantID: "M1", AuthKey: "mac-a"},
		"terminal": {Listener: "keyed", TerminalID: "TERM0002", MerchantID: "M1", AuthKey: "mac-a"},
		"merchant": {Listener: "keyed", TerminalID: "TERM0001", MerchantID: "M2", AuthKey: "mac-a"},
		"MAC key":  {Listener: "keyed", TerminalID: "TERM0001", MerchantID: "M1", AuthKey: "mac-b"},
	}
	for name, sc := range others {
		if _, err := j.FindOriginal(ctx, sc, "0200", s.STAN, s.TxTime); !errors.Is(err, ErrNotFound) {
			t.Errorf("cancel from another %s found the sale: %v", name, err)
		}
		if _, err := j.FindSale(ctx, sc, s.RRN, s.ApprovalCode); !errors.Is(err, ErrNotFound) {
			t.Errorf("refund from another %s found the sale: %v", name, err)
		}
	}
	if got, err := j.FindOriginal(ctx, home, "0200", s.STAN, s.TxTime); err != nil || got.ID != s.ID {
		t.Fatalf("own cancel: %+v %v", got, err)
	}
	if got, err := j.FindSale(ctx, home, s.RRN, s.ApprovalCode); err != nil || got.ID != s.ID {
		t.Fatalf("own refund: %+v %v", got, err)
	}
	twin := sale("000002")
	twin.Listener, twin.MerchantID, twin.AuthKey = home.Listener, home.MerchantID, home.AuthKey
	twin.State, twin.RRN, twin.ApprovalCode = Approved, s.RRN, s.ApprovalCode
	if _, err := j.Begin(ctx, twin); err != nil {
		t.Fatal(err)
	}
	if _, err := j.FindSale(ctx, home, s.RRN, s.ApprovalCode); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("two sales with one RRN: %v", err)
	}
}

// TestOpenAddsNewColumnsToAnOldFile: a journal file from before auth_key
// and content_hash opens, keeps its rows and records the new columns.
func TestOpenAddsNewColumnsToAnOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	old := schema
	for _, c := range addedColumns {
		old = removeLine(t, old, c.name)
	}
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO txns (terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount, currency,
		masked_pan, token, pan_key, pan_key_version, card_expiry, route, issuer_stan, issuer_tx_time, rrn, approval_code, rc,
		state, remaining, original_id, created_at, updated_at) VALUES
		('TERM0001','000001','1125101500','0200','terminal','M1','000000',100,'410','','','',0,'','card-a','','','','','00','approved',100,0,1,1)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	got, err := j.FindByKey(ctx, Key{TerminalID: "TERM0001", STAN: "000001", TxTime: "1125101500", MTI: "0200"})
	if err != nil || got.AuthKey != "" || got.ContentHash != "" {
		t.Fatalf("old row: %+v %v", got, err)
	}
	s := sale("000002")
	s.AuthKey, s.ContentHash = "mac-a", "h"
	row, err := j.Begin(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := j.Get(ctx, row.ID); got.AuthKey != "mac-a" || got.ContentHash != "h" {
		t.Fatalf("new row: %+v", got)
	}
}

// removeLine drops the schema line declaring column.
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
	return strings.Join(out, "\n")
}

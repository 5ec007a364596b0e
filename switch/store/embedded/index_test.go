package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// TestLookupsUseThePartialIndexes: the look-ups by RRN and by issuer STAN
// are served by the indexes that hold only rows with one (a request is
// recorded without them), not by a scan of the journal.
func TestLookupsUseThePartialIndexes(t *testing.T) {
	s := open(t, false)
	search, searchArgs := searchStatement(store.TxnFilter{RRN: "512345000001", TerminalID: "TERM0001", State: store.Approved}, nil)
	for _, tc := range []struct {
		name, q, index string
		args           []any
	}{
		{"FindSale", findSaleQuery, "txns_rrn_given", []any{"512345000001", "A1B2C3", "pos", "TERM0001", "M1", ""}},
		{"FindByIssuerSTAN", findByIssuerSTANQuery, "txns_issuer_given", []any{"card-a", "000555"}},
		{"Search by RRN", search, "txns_rrn_given", searchArgs},
		{"InFlight", inFlightQuery, "txns_forwarded", []any{"me"}},
	} {
		if plan := queryPlan(t, s.j.db.R, tc.q, tc.args...); !strings.Contains(plan, tc.index) {
			t.Errorf("%s: plan %q does not use %s", tc.name, plan, tc.index)
		}
	}
}

// TestOpenDropsTheOldIndexes: a journal file with the indexes over every
// row (and without the owner column) loses them when opened and gets the
// partial ones; its rows stay. txns_created goes too (created.go).
func TestOpenDropsTheOldIndexes(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	ownerless := strings.Replace(schema, "owner           TEXT NOT NULL DEFAULT '',", "", 1)
	if ownerless == schema {
		t.Fatal("the txns owner column is not where the test expects it")
	}
	if _, err := db.Exec(ownerless + `CREATE INDEX txns_rrn ON txns(rrn); CREATE INDEX txns_issuer ON txns(route, issuer_stan);
		CREATE INDEX txns_state ON txns(state); CREATE INDEX txns_created ON txns(created_at);`); err != nil {
		t.Fatal(err)
	}
	old := sale("000777")
	if _, err := db.Exec(`INSERT INTO txns (`+sqlstore.TxnInsertList[:strings.LastIndex(sqlstore.TxnInsertList, ",")]+`)
		VALUES (?,?,?,?,'pos','M1',?,?,?,'','','',0,NULL,'',?,'','','','','',?,0,0,1,1,'','')`,
		old.TerminalID, old.STAN, old.TxTime, old.MTI, old.ProcCode, old.Amount, old.Currency, old.Route, string(old.State)); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "new"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rows, err := s.j.db.R.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'txns' AND name LIKE 'txns_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		have[name] = true
	}
	if have["txns_rrn"] || have["txns_issuer"] || have["txns_state"] || have["txns_created"] || !have["txns_rrn_given"] || !have["txns_issuer_given"] ||
		!have["txns_forwarded"] {
		t.Fatalf("indexes after open: %v", have)
	}
	inFlight, err := s.j.InFlight(context.Background())
	if err != nil || len(inFlight) != 1 || inFlight[0].Key != old.Key {
		t.Fatalf("in flight after open: %v, %+v", err, inFlight)
	}
}

// queryPlan is SQLite's plan for q, its steps joined.
func queryPlan(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "; ")
}

// TestOpenRefusesANewerJournal: Open records the journal's schema version
// in its user_version and refuses a file a newer version wrote.
func TestOpenRefusesANewerJournal(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	var version int
	if err := s.j.db.R.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != journalVersion {
		t.Fatalf("user_version after open: %d, %v; want %d", version, err, journalVersion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, journalVersion+1)); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenDir(dir, Options{}); !errors.Is(err, ErrJournalNewer) {
		if err == nil {
			_ = s.Close()
		}
		t.Fatalf("opening a newer journal: %v, want ErrJournalNewer", err)
	}
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != journalVersion+1 {
		t.Fatalf("user_version after the refusal: %d, %v; want %d", version, err, journalVersion+1)
	}
}

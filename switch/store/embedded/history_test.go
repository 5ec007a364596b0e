package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kbpay/switch/switch/store"
)

// TestAnswerIsKeptInTheRow: a sale's answer (Set with its event) writes no
// events row (the row keeps it), and the history reads the same as before.
func TestAnswerIsKeptInTheRow(t *testing.T) {
	s := open(t, false)
	ctx := context.Background()
	row, err := s.Sales().Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sales().Set(ctx, row.ID, store.Update{State: store.Approved, RC: "00"}, "issuer answered 00"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.j.db.R.QueryRow(`SELECT count(*) FROM events WHERE txn_id = ?`, row.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("events rows of an answered sale: %d (%v), want 0", n, err)
	}
	h, err := s.Lookup().History(ctx, row.ID)
	if err != nil || len(h) != 1 || h[0].Kind != "approved" || h[0].Detail != "issuer answered 00" || h[0].At.IsZero() {
		t.Fatalf("history: %+v %v", h, err)
	}
}

// TestHistoryKeepsItsOrder: whichever way a transaction's events came
// (Set with an event, Event, a second Set), History and Events list them
// in the order they were recorded.
func TestHistoryKeepsItsOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []bool // true: Set with an event, false: Event
	}{
		{"set, event, set", []bool{true, false, true}},
		{"event, set, set", []bool{false, true, true}},
		{"event, event, set", []bool{false, false, true}},
		{"set, set", []bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, false)
			ctx := context.Background()
			row, err := s.Sales().Begin(ctx, sale("000001"))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i, set := range tc.steps {
				detail := string(rune('a' + i))
				if set {
					err, want = s.Sales().Set(ctx, row.ID, store.Update{State: store.Answered}, detail), append(want, "answered: "+detail)
				} else {
					err, want = s.Sales().Event(ctx, row.ID, "note", detail), append(want, "note: "+detail)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.Lookup().Events(ctx, row.ID); err != nil || !slices.Equal(got, want) {
				t.Fatalf("events %q (%v), want %q", got, err, want)
			}
			h, err := s.Lookup().History(ctx, row.ID)
			if err != nil || len(h) != len(want) {
				t.Fatalf("history %+v (%v)", h, err)
			}
			for i, e := range h {
				if e.Kind+": "+e.Detail != want[i] {
					t.Fatalf("history %+v, want %q", h, want)
				}
			}
		})
	}
}

// TestOldHistoryStaysFirst: a row of an older journal file, whose events
// are all in events, gets its next events after them.
func TestOldHistoryStaysFirst(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	row, err := s.Sales().Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// As an older version leaves it: an events row, no first event column.
	db, err := sql.Open("sqlite", filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO events (txn_id, at, kind, detail) VALUES (?, 1, 'old', 'before')`, row.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"first_event_at", "first_event_kind", "first_event_detail"} {
		if _, err := db.Exec(`ALTER TABLE txns DROP COLUMN ` + c); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	s, err = OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Sales().Set(ctx, row.ID, store.Update{State: store.Approved, RC: "00"}, "issuer answered 00"); err != nil {
		t.Fatal(err)
	}
	want := []string{"old: before", "approved: issuer answered 00"}
	if got, err := s.Lookup().Events(ctx, row.ID); err != nil || !slices.Equal(got, want) {
		t.Fatalf("events %q (%v), want %q", got, err, want)
	}
}

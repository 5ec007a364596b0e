package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// clockTestStart is when the clock tests' first row is stamped.
var clockTestStart = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// setBackWindow is a window holding only the rows stamped after the clock
// went back 3 h from clockTestStart.
func setBackWindow() (from, to time.Time) {
	return clockTestStart.Add(-3*time.Hour - time.Minute), clockTestStart.Add(-2 * time.Hour)
}

// beginAt records sale stan as stamped at.
func beginAt(t *testing.T, s *Store, stan string, at time.Time) {
	t.Helper()
	s.j.now = func() time.Time { return at }
	if _, err := s.Sales().Begin(context.Background(), sale(stan)); err != nil {
		t.Fatal(err)
	}
}

// countBetween is how many rows Between finds in [from, to).
func countBetween(t *testing.T, s *Store, from, to time.Time) int {
	t.Helper()
	rows, err := s.Lookup().Between(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// TestClockSetBackBeforeTheMarks: a journal file from a version before
// the clock_set_back mark (no journal_marks table) whose clock already
// went back beyond the slack gets the mark when opened: Between finds the
// rows stamped after the step.
func TestClockSetBackBeforeTheMarks(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute, -3 * time.Hour, -3*time.Hour + time.Minute} {
		beginAt(t, s, fmt.Sprintf("%06d", i+1), clockTestStart.Add(d))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What an older version left: the rows, no marks.
	db, err := sql.Open("sqlite", filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE journal_marks; PRAGMA user_version = 0`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	from, to := setBackWindow()
	for _, who := range []string{"first open of the old file", "second open"} {
		if n := countBetween(t, openAt(t, dir, false), from, to); n != 2 {
			t.Errorf("%s: Between found %d rows created after the clock went back 3 h, want 2", who, n)
		}
	}
}

// TestClockMarkSurvivesAFailedWrite: the clock_set_back mark noticed by a
// write that fails under its savepoint is still committed with its group,
// so a later row stamped before the step is found by a handle opened
// afterwards.
func TestClockMarkSurvivesAFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, false)
	ctx := context.Background()
	beginAt(t, s, "000001", clockTestStart)
	beginAt(t, s, "000002", clockTestStart.Add(time.Minute))
	refused := errors.New("refused after recording")
	s.j.now = func() time.Time { return clockTestStart.Add(-3 * time.Hour) }
	err := s.j.exec(ctx, "test", func(tx *sql.Tx) error {
		row := sale("000003")
		if err := s.j.insert(tx, &row); err != nil {
			return err
		}
		return refused // rolled back to the write's savepoint
	})
	if !errors.Is(err, refused) {
		t.Fatalf("failing write: %v", err)
	}
	beginAt(t, s, "000004", clockTestStart.Add(-3*time.Hour+time.Minute))
	from, to := setBackWindow()
	if n := countBetween(t, openAt(t, dir, false), from, to); n != 1 {
		t.Errorf("a handle opened afterwards: Between found %d rows created after the clock went back 3 h, want 1", n)
	}
}

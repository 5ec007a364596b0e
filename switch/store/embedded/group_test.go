package embedded

import (
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"github.com/kbpay/switch/switch/store"
)

// TestFileFailureOfACheckedWriteRunsTheGroupAgain: a write run without a
// savepoint (byCheck) that fails on the file after it wrote something
// leaves nothing of itself: the group is run again with savepoints, the
// failed write is store.ErrUnavailable, a refusal keeps its own error and
// every other write of the group is committed once.
func TestFileFailureOfACheckedWriteRunsTheGroupAgain(t *testing.T) {
	s := open(t, false)
	j := s.j
	before := w(byCheck, note(j, "before"))
	broken := w(byCheck, func(tx *sql.Tx) error {
		if err := note(j, "broken")(tx); err != nil {
			return err
		}
		return errors.New("disk I/O error")
	})
	refused := w(byCheck, func(*sql.Tx) error { return store.ErrLeaseLost })
	after := w(bySavepoint, note(j, "after"))
	single := w(byStatement, note(j, "single"))
	j.commit([]*write{before, broken, refused, after, single})

	for name, got := range map[string]error{"before": before.err, "after": after.err, "single": single.err} {
		if got != nil {
			t.Errorf("%s: %v", name, got)
		}
	}
	if err := failure(broken.err); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("the broken write: %v, want ErrUnavailable", err)
	}
	if !errors.Is(refused.err, store.ErrLeaseLost) {
		t.Errorf("the refused write: %v", refused.err)
	}
	if kinds, want := notes(t, j), []string{"before", "after", "single"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("committed %q, want %q", kinds, want)
	}
}

// TestFailedCommitFailsEveryWriteOfItsGroup: when the group's commit
// fails, every write of it is store.ErrUnavailable, a refusal too (what it
// was decided on was not committed), and nothing of the group is kept.
func TestFailedCommitFailsEveryWriteOfItsGroup(t *testing.T) {
	s := open(t, false)
	j := s.j
	refused := w(byCheck, func(*sql.Tx) error { return store.ErrLeaseLost })
	applied := w(byCheck, note(j, "applied"))
	// Ends the transaction under the committer, so its COMMIT fails.
	ender := w(byStatement, func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, `ROLLBACK`)
		return err
	})
	j.commit([]*write{refused, applied, ender})
	for name, got := range map[string]error{"refused": refused.err, "applied": applied.err, "ender": ender.err} {
		if !errors.Is(failure(got), store.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, got)
		}
	}
	if kinds := notes(t, j); len(kinds) != 0 {
		t.Fatalf("a failed group left %q", kinds)
	}
	// The next group commits.
	next := w(byCheck, note(j, "next"))
	j.commit([]*write{next})
	if kinds := notes(t, j); next.err != nil || !reflect.DeepEqual(kinds, []string{"next"}) {
		t.Fatalf("the group after a failed commit: %v, %q", next.err, kinds)
	}
}

// w is a write of the test's.
func w(u undo, fn func(*sql.Tx) error) *write {
	return &write{op: "test", fn: fn, undo: u, done: make(chan struct{})}
}

// note is a write adding an event of kind to transaction 1.
func note(j *journal, kind string) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (1, 0, ?, '')`, kind)
		return err
	}
}

// notes are the kinds of transaction 1's committed events, in order.
func notes(t *testing.T, j *journal) []string {
	t.Helper()
	rows, err := j.db.R.Query(`SELECT kind FROM events WHERE txn_id = 1 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kinds []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return kinds
}

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
	note := func(kind string) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (1, 0, ?, '')`, kind)
			return err
		}
	}
	w := func(u undo, fn func(*sql.Tx) error) *write {
		return &write{op: "test", fn: fn, undo: u, done: make(chan struct{})}
	}
	before := w(byCheck, note("before"))
	broken := w(byCheck, func(tx *sql.Tx) error {
		if err := note("broken")(tx); err != nil {
			return err
		}
		return errors.New("disk I/O error")
	})
	refused := w(byCheck, func(*sql.Tx) error { return store.ErrLeaseLost })
	after := w(bySavepoint, note("after"))
	single := w(byStatement, note("single"))
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
	if want := []string{"before", "after", "single"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("committed %q, want %q", kinds, want)
	}
}

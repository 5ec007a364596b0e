package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store/sqlstore"
)

// The journal keeps no index on created_at: a row's id and its created_at
// grow together (the committer numbers the rows in the order it records
// them and stamps each as it records it), so a time window is an id range,
// found by binary search over the ids in a few point reads of the table
// itself. The index it replaces (txns_created) cost every sale an index
// insert and a page more in its commit.

// clockSlack is how far a row's created_at may be behind an earlier row's
// (the wall clock set back, another handle's committer stamping a moment
// before it got the file's write lock): the id range of a window reaches
// that much beyond it on each side, and its rows are then selected by
// created_at itself.
const clockSlack = time.Hour

// markSchema keeps facts about the journal file itself; clockSetBack is
// there once a row was stamped more than clockSlack before a row recorded
// ahead of it.
const markSchema = `
CREATE TABLE IF NOT EXISTS journal_marks (
	name TEXT PRIMARY KEY,
	at INTEGER NOT NULL
);
`

// clockSetBack: the wall clock went back further than clockSlack while
// the journal recorded. From then on a time window is read by created_at
// alone (every row, no id range): slower, never a row short.
const clockSetBack = "clock_set_back"

// clockWatch follows the stamps the committer gives rows, to notice the
// clock going back further than clockSlack. Only the committer's
// goroutine touches it, except stepped.
type clockWatch struct {
	newest  int64 // the latest created_at committed (Unix ms)
	pending int64 // the latest stamped in the group being committed
	marking bool  // the group writes the clockSetBack mark
}

// stamp is called by the committer for each row it stamps at (Unix ms),
// inside the group's transaction: when at is further back than the slack,
// it writes the clockSetBack mark there too.
func (j *journal) stamp(at int64) error {
	c := &j.clock
	if at < c.newest-clockSlack.Milliseconds() && !j.stepped.Load() && !c.marking {
		if _, err := j.w.exec(`INSERT INTO journal_marks (name, at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, clockSetBack, at); err != nil {
			return fmt.Errorf("journal: noting the clock set back: %w", err)
		}
		c.marking = true
	}
	c.pending = max(c.pending, at)
	return nil
}

// stamped ends a group: what it stamped counts once it committed.
func (j *journal) stamped(committed bool) {
	c := &j.clock
	if committed {
		c.newest = max(c.newest, c.pending)
		if c.marking {
			j.stepped.Store(true)
		}
	}
	c.pending, c.marking = 0, false
}

// watchClock starts the watch from the journal's latest row and mark.
func (j *journal) watchClock() error {
	err := j.db.W.QueryRow(`SELECT created_at FROM txns ORDER BY id DESC LIMIT 1`).Scan(&j.clock.newest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("reading the latest row's time: %w", err)
	}
	_, err = j.clockWasSetBack(context.Background())
	return err
}

// clockWasSetBack reports whether the file holds the clockSetBack mark
// (written by this handle or another).
func (j *journal) clockWasSetBack(ctx context.Context) (bool, error) {
	if j.stepped.Load() {
		return true, nil
	}
	var at int64
	err := j.db.QueryRow(ctx, `SELECT at FROM journal_marks WHERE name = ?`, clockSetBack).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("journal: reading its marks: %w", err)
	}
	j.stepped.Store(true)
	return true, nil
}

// idsCreated are the conditions on id that hold every row created in
// [from, to) (a zero time leaves that side open); none once the clock was
// set back further than the slack.
func (j *journal) idsCreated(ctx context.Context, from, to time.Time) ([]sqlstore.Condition, error) {
	var conds []sqlstore.Condition
	if stepped, err := j.clockWasSetBack(ctx); err != nil || stepped {
		return nil, err
	}
	for _, b := range []struct {
		at time.Time
		op string
		by time.Duration
	}{{from, ">=", -clockSlack}, {to, "<", clockSlack}} {
		if b.at.IsZero() {
			continue
		}
		id, err := j.firstCreatedFrom(ctx, b.at.Add(b.by).UnixMilli())
		if err != nil {
			return nil, err
		}
		conds = append(conds, sqlstore.Condition{Column: "id", Op: b.op, Arg: id})
	}
	return conds, nil
}

// firstCreatedFrom is the smallest id such that every row below it was
// created before at (Unix ms) and every row from it on at or after at:
// one past the last id when every row is older.
func (j *journal) firstCreatedFrom(ctx context.Context, at int64) (int64, error) {
	var lo, hi int64
	if err := j.db.QueryRow(ctx, `SELECT coalesce(min(id), 0), coalesce(max(id), 0) + 1 FROM txns`).Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("journal: reading the id range: %w", err)
	}
	// Search [lo, hi] for the first n whose next row (the first with id
	// >= n; none counts as created at or after at) was created at or
	// after at: hi qualifies.
	for lo < hi {
		mid := lo + (hi-lo)/2
		var id, created int64
		err := j.db.QueryRow(ctx, `SELECT id, created_at FROM txns WHERE id >= ? ORDER BY id LIMIT 1`, mid).Scan(&id, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows) || err == nil && created >= at:
			hi = mid
		case err != nil:
			return 0, fmt.Errorf("journal: finding the rows created from %d: %w", at, err)
		default:
			lo = id + 1 // every n in (mid, id] has the same next row
		}
	}
	return lo, nil
}

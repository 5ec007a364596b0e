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

// clockChecked: the journal's rows were read once for a clock set back
// further than clockSlack before this handle's committer watched it (a
// file from a version without the mark, whose clock may have gone back
// unnoticed); checkClockOnce does it when the file has no such mark.
const clockChecked = "clock_checked"

// clockWatch follows the stamps the committer gives rows, to notice the
// clock going back further than clockSlack. Only the committer's
// goroutine touches it, except stepped.
type clockWatch struct {
	newest  int64 // the latest created_at committed (Unix ms)
	pending int64 // the latest stamped in the group being committed
	// mark: the group stamped a row further back than the slack; run
	// writes the clockSetBack mark (at markAt) with the group, outside
	// any write's savepoint, so that no write's failure undoes it.
	mark   bool
	markAt int64
}

// stamp is called by the committer for each row it stamps at (Unix ms),
// inside the group's transaction: it notes whether the group must write
// the clockSetBack mark (markClock).
func (j *journal) stamp(at int64) {
	c := &j.clock
	// Against the group's own stamps too: the clock may go back between
	// two rows of one group.
	if at < max(c.newest, c.pending)-clockSlack.Milliseconds() && !j.stepped.Load() && !c.mark {
		c.mark, c.markAt = true, at
	}
	c.pending = max(c.pending, at)
}

// markClock writes the clockSetBack mark in the group's transaction when
// one of its writes stamped a row beyond the slack: at group level, just
// before the commit, so it commits exactly when the group does (a write
// that failed under its savepoint may have noted it; the mark is then
// merely early, never missing).
func (j *journal) markClock() error {
	if !j.clock.mark {
		return nil
	}
	if _, err := j.w.exec(insertMark, clockSetBack, j.clock.markAt); err != nil {
		return fmt.Errorf("journal: noting the clock set back: %w", err)
	}
	return nil
}

const insertMark = `INSERT INTO journal_marks (name, at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`

// stamped ends a group: what it stamped counts once it committed, and the
// mark it wrote with it (markClock) is then in the file.
func (j *journal) stamped(committed bool) {
	c := &j.clock
	if committed {
		c.newest = max(c.newest, c.pending)
		if c.mark {
			j.stepped.Store(true)
		}
	}
	c.pending, c.mark, c.markAt = 0, false, 0
}

// watchClock starts the watch from the journal's latest row and mark,
// after checkClockOnce.
func (j *journal) watchClock() error {
	if err := checkClockOnce(j.db.W, j.now().UnixMilli()); err != nil {
		return err
	}
	err := j.db.W.QueryRow(`SELECT created_at FROM txns ORDER BY id DESC LIMIT 1`).Scan(&j.clock.newest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("reading the latest row's time: %w", err)
	}
	_, err = j.clockWasSetBack(context.Background())
	return err
}

// firstSetBack is the created_at of the first row (by id) stamped more
// than ? ms before a row recorded ahead of it: one pass over the table.
const firstSetBack = `
SELECT created_at FROM (
	SELECT created_at, max(created_at) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
	FROM txns
) WHERE created_at < before - ? LIMIT 1`

// checkClockOnce reads, once per journal file, whether its rows hold a
// clock set back beyond the slack (a file written by a version that did
// not watch for it), and writes the clockSetBack mark if so; then the
// clockChecked mark (at now), so later opens skip the pass. The marks are
// written in that order: a crash between them only repeats the pass. Rows
// another handle records meanwhile are watched by its own committer.
func checkClockOnce(db *sql.DB, now int64) error {
	var at int64
	err := db.QueryRow(`SELECT at FROM journal_marks WHERE name = ?`, clockChecked).Scan(&at)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("reading the journal's marks: %w", err)
	}
	err = db.QueryRow(firstSetBack, clockSlack.Milliseconds()).Scan(&at)
	switch {
	case err == nil:
		if _, err := db.Exec(insertMark, clockSetBack, at); err != nil {
			return fmt.Errorf("noting the clock set back: %w", err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("reading the rows for a clock set back: %w", err)
	}
	if _, err := db.Exec(insertMark, clockChecked, now); err != nil {
		return fmt.Errorf("noting the clock checked: %w", err)
	}
	return nil
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

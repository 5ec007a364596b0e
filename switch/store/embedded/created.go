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

// idsCreated are the conditions on id that hold every row created in
// [from, to) (a zero time leaves that side open).
func (j *journal) idsCreated(ctx context.Context, from, to time.Time) ([]sqlstore.Condition, error) {
	var conds []sqlstore.Condition
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

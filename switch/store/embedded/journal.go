// Package embedded is the embedded store (store.Store): SQLite files in the
// data folder, no server. The journal records every transaction's life
// durably (received, forwarded, answered, timed out, cancelled, reversed)
// and keeps the store-and-forward queue of give-backs, the durable number
// sequences and the instances' heartbeats, with group commits so that
// making each approval durable before the terminal hears it costs little;
// the vault keeps the tokens. One process uses the files at a time (the
// switch locks the data folder); two handles in one process share them
// correctly, which is how store/storetest exercises the many-instance
// rules.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/cpurole"
	"github.com/kbpay/switch/internal/groupcommit"
	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
)

// Options tune the embedded store.
type Options struct {
	// JournalPath is the journal's SQLite file (transactions, events, the
	// SAF queue, sequences, instances). Required.
	JournalPath string
	// VaultPath is the token vault's SQLite file. Required.
	VaultPath string
	// Durable makes every journal commit fsync (SQLite synchronous=FULL).
	// Default false; the switch sets it from journal.durable (default
	// true); false only for the journal-off benchmark.
	Durable bool
	// MaxBatch caps how many writes share one commit. Default 256.
	MaxBatch int
	// GroupWait is how long the committer may hold a group for more writes
	// before it commits, when writes keep arriving while commits run (see
	// groupWait); GroupSize ends the wait early (default 16). Default 0:
	// never held; the switch sets it from journal.group_wait, and
	// Store.HoldGroups changes both while the journal runs.
	GroupWait time.Duration
	GroupSize int
	// Instance is who this handle records and claims as. Default: name ""
	// and store.DefaultLease.
	Instance store.Instance
	// OnCommit, when set, is told how long each group commit took (begin
	// to commit, fsync included), how many writes it carried and the error
	// that failed the whole commit (nil when it committed): the switch's
	// journal commit metrics. Called from the committer's goroutine: it
	// must be safe for concurrent use and must not block.
	OnCommit func(d time.Duration, writes int, err error)
	// OnHold, when set, is told of each group held for more writes (see
	// GroupWait): how long it was held and how many writes joined it
	// meanwhile (0: a fruitless hold). Called from the committer's
	// goroutine before the group commits: it must be safe for concurrent
	// use and must not block.
	OnHold func(d time.Duration, gained int)
	// Logger tells of failures the store works around (the vault's use
	// count flushes). Default: none.
	Logger *zap.Logger
}

// journal is the SQLite journal with a group-committing writer.
type journal struct {
	db      *sqlitedb.DB
	w       *writerConn
	writes  chan *write
	stop    chan struct{}
	stopped sync.WaitGroup
	// drained is closed when the committer has returned: a write that
	// slipped into the queue as the journal closed is never taken.
	drained chan struct{}
	opts    Options
	inst    store.Instance
	now     func() time.Time
	// clock and stepped notice the wall clock going back (created.go).
	clock   clockWatch
	stepped atomic.Bool
	// hold is the group hold's settings (Options' GroupWait and
	// GroupSize, changed by holdGroups): the committer reads them before
	// each group, both from one setting.
	hold atomic.Pointer[holdSettings]
}

// holdSettings are how long a group may be held and the size that ends
// a hold.
type holdSettings struct {
	wait time.Duration
	size int
}

type write struct {
	op   string
	fn   func(*sql.Tx) error
	undo undo
	err  error
	done chan struct{}
}

// undo is how a write that fails is undone without undoing its group.
type undo uint8

const (
	// bySavepoint: fn may fail after it wrote something; it runs under a
	// savepoint, rolled back when it fails.
	bySavepoint undo = iota
	// byStatement: fn runs one statement, which SQLite undoes by itself
	// when it fails. No savepoint (they cost about a third of a write).
	byStatement
	// byCheck: fn refuses (a decided error: a duplicate, a lost lease, ...)
	// before it writes anything, so a refusal needs no undoing; any other
	// failure (the file's) makes the committer roll the group back and run
	// it again with a savepoint per write.
	byCheck
)

// openJournal opens or creates the journal file and starts its committer.
func openJournal(path string, opts Options) (*journal, error) {
	sync := sqlitedb.SyncNormal
	if opts.Durable {
		sync = sqlitedb.SyncFull
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	db, err := sqlitedb.Open(path, sync, schema+sequenceSchema+instanceSchema+zoneKeySchema+markSchema, true)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := migrate(db.W); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	w, err := openWriterConn(db.W)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	inst := opts.Instance
	inst.Lease = inst.LeaseOr()
	j := &journal{db: db, w: w, writes: make(chan *write, 4096), stop: make(chan struct{}), drained: make(chan struct{}), opts: opts, inst: inst, now: time.Now}
	j.holdGroups(opts.GroupWait, opts.GroupSize)
	if err := j.watchClock(); err != nil {
		_ = w.close()
		_ = db.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	j.stopped.Add(1)
	go j.commitLoop()
	return j, nil
}

// holdGroups sets how long the committer may hold a group for more
// writes (0: never) and the size that ends a hold (0: 16; at most
// MaxBatch). The committer applies them from its next group on.
func (j *journal) holdGroups(wait time.Duration, size int) {
	if size <= 0 {
		size = 16
	}
	j.hold.Store(&holdSettings{wait: max(wait, 0), size: min(size, j.opts.MaxBatch)})
}

// Close stops the committer after the writes already submitted and closes
// the file.
func (j *journal) Close() error {
	close(j.stop)
	j.stopped.Wait()
	return errors.Join(j.w.close(), j.db.Close())
}

// exec runs fn in a transaction shared with other concurrent writes; it
// returns once that transaction is committed (fsync'd when Durable).
// Each fn runs under its own savepoint, so one failing write does not undo
// the others.
func (j *journal) exec(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return j.submit(ctx, &write{op: op, fn: fn, done: make(chan struct{})})
}

// exec1 is exec for a fn that runs exactly one statement.
func (j *journal) exec1(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return j.submit(ctx, &write{op: op, fn: fn, undo: byStatement, done: make(chan struct{})})
}

// execChecked is exec for a fn that returns its decided errors (see
// decided) before its first write: it runs without a savepoint.
func (j *journal) execChecked(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return j.submit(ctx, &write{op: op, fn: fn, undo: byCheck, done: make(chan struct{})})
}

func (j *journal) submit(ctx context.Context, w *write) error {
	select {
	case j.writes <- w:
	case <-j.stop:
		return fmt.Errorf("journal: closed: %w", store.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once submitted, wait for the commit even if ctx ends: the caller must
	// know whether its write is durable. A write that slipped in while the
	// journal closed is never taken (nothing of it applied).
	select {
	case <-w.done:
	case <-j.drained:
		select {
		case <-w.done:
		default:
			return fmt.Errorf("journal: closed: %w", store.ErrUnavailable)
		}
	}
	return failure(w.err)
}

// failure marks a write's error that is not a decision (a duplicate key,
// an amount that exceeds, a lost lease, ...) as store.ErrUnavailable: the
// file failed (I/O, full disk), nothing of the write is applied.
func failure(err error) error {
	if err == nil || decided(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// decided reports whether err is a write's refusal on the data (not a
// failure of the file).
func decided(err error) bool {
	if sqlitedb.IsUnique(err) {
		return true
	}
	for _, d := range []error{errKeyTaken, store.ErrNotFound, store.ErrExceeds, store.ErrNotReserved, store.ErrLeaseLost,
		store.ErrLeaseHeld, store.ErrUnavailable, store.ErrDuplicate, store.ErrSAFState} {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

func (j *journal) commitLoop() {
	cpurole.Set(cpurole.Journal)
	defer j.stopped.Done()
	defer close(j.drained)
	hold := newGroupWait(0, 0)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var batch []*write
		select {
		case w := <-j.writes:
			batch = append(batch, w)
		case <-j.stop:
			// Drain what was submitted before Close.
			for {
				select {
				case w := <-j.writes:
					j.commit([]*write{w})
				default:
					return
				}
			}
		}
		batch = groupcommit.Take(j.writes, batch, j.opts.MaxBatch)
		set := j.hold.Load()
		hold.max, hold.size = set.wait, set.size
		// Held only past what joins without holding: the writers about
		// to submit are in already, and a hold gains only later writes.
		if len(batch) < hold.size {
			if d := hold.wait(); d > 0 {
				had, from := len(batch), time.Now()
				batch = groupcommit.Drain(j.writes, gather(j.writes, batch, hold.size, d, timer, j.stop), j.opts.MaxBatch)
				hold.held(len(batch) - had)
				if j.opts.OnHold != nil {
					j.opts.OnHold(time.Since(from), len(batch)-had)
				}
			}
		}
		// Only the commit is timed: what arrives during it is what a hold
		// of that long may expect (a hold timed in would feed itself).
		start := time.Now()
		arrived := j.commit(batch)
		hold.observe(arrived, time.Since(start))
	}
}

// commit runs batch as one transaction (one fsync when Durable) and tells
// each write's caller. A write's refusal fails that write only; a failed
// commit fails them all with store.ErrUnavailable. It returns how many
// writes arrived meanwhile, counted before any of its writers is told
// (one told could submit its next write at once: a lone writer's would
// look like another's).
func (j *journal) commit(batch []*write) (arrived int) {
	var failed error
	if j.opts.OnCommit != nil {
		start := time.Now()
		defer func() { j.opts.OnCommit(time.Since(start), len(batch), failed) }()
	}
	failed = j.run(batch, false)
	if errors.Is(failed, errRedo) {
		j.stamped(false)
		failed = j.run(batch, true)
	}
	j.stamped(failed == nil)
	arrived = len(j.writes)
	for _, w := range batch {
		if failed != nil {
			// Even a refusal: what it was decided on may not have been
			// committed (a duplicate of a request of the same group).
			w.err = failed
		}
		close(w.done)
	}
	return arrived
}

// errRedo: a write run without a savepoint failed on the file; its group
// was rolled back to be run again with savepoints.
var errRedo = errors.New("journal: group to run again with savepoints")

// run runs batch in one transaction and commits it, setting each write's
// error. Unless safely, byCheck writes run without savepoints, and one
// failing with an undecided error rolls everything back: errRedo.
func (j *journal) run(batch []*write, safely bool) error {
	tx, err := j.w.conn.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("journal: begin: %w: %w", store.ErrUnavailable, err)
	}
	for _, w := range batch {
		w.err = nil
		if w.undo == byStatement || w.undo == byCheck && !safely {
			w.err = w.fn(tx)
			if w.err != nil && w.undo == byCheck && !decided(w.err) {
				_ = tx.Rollback()
				return errRedo
			}
			continue
		}
		if _, err := j.db.TxExec(tx, "SAVEPOINT w"); err != nil {
			w.err = err
			continue
		}
		if w.err = w.fn(tx); w.err != nil {
			_, _ = j.db.TxExec(tx, "ROLLBACK TO w")
		}
		_, _ = j.db.TxExec(tx, "RELEASE w")
	}
	if err := j.markClock(); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: commit: %w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// insertEvent appends to a transaction's history.
const insertEvent = `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`

// eventsFromNowOn marks a row that has no event yet as having its history
// in events (see first_event_at in schema.go): a later Set must not keep
// its event in the row, which History reads first.
const eventsFromNowOn = `UPDATE txns SET first_event_at = -1 WHERE id = ? AND first_event_at = 0`

// event appends kind: detail at at (Unix ms) to transaction id's history
// inside tx (on the committer's connection, through the driver) as an
// events row. Should the insert fail after the mark, the mark alone is
// harmless: the history is read from events either way.
func (j *journal) event(_ *sql.Tx, id, at int64, kind, detail string) error {
	if _, err := j.w.exec(eventsFromNowOn, id); err != nil {
		return err
	}
	_, err := j.w.exec(insertEvent, id, at, kind, detail)
	return err
}

// Probe makes one small durable write (an event row of transaction 0
// saying why): it tells whether the journal accepts writes again after a
// failure.
func (j *journal) Probe(ctx context.Context, why string) error {
	return j.exec1(ctx, store.OpProbe, func(tx *sql.Tx) error {
		return j.event(tx, 0, j.now().UnixMilli(), "journal_probe", why)
	})
}

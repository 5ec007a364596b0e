// Package journal records every transaction's life durably (received,
// forwarded, answered, timed out, cancelled, reversed) and keeps the
// store-and-forward queue of reversals, with group commits so that making
// each approval durable before the terminal hears it costs little.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
)

// State is where a transaction stands.
type State string

const (
	// Forwarded: sent to the issuer, no answer recorded yet. After a crash
	// such a sale may have been approved: recovery reverses it.
	Forwarded State = "forwarded"
	Approved  State = "approved"
	Declined  State = "declined"
	// TimedOut: no answer in time; the terminal got 91 and a reversal is
	// queued.
	TimedOut State = "timed_out"
	// Failed: never reached the issuer (no link, no route, refused by the
	// switch); nothing to reverse.
	Failed State = "failed"
	// Answered is a cancel, refund or reversal request that was answered.
	Answered State = "answered"
)

// Key identifies a terminal request: terminal ID + STAN + transmission
// date/time (DE 7) + MTI. A repeat of the same key is a duplicate.
type Key struct {
	TerminalID string
	STAN       string
	TxTime     string
	MTI        string
}

// Txn is one journal row.
type Txn struct {
	ID int64
	Key
	Listener   string
	MerchantID string
	ProcCode   string
	Amount     int64
	Currency   string
	MaskedPAN  string
	Token      string
	// PAN under the HSM data key: a cancel or reversal can reach the card
	// after a one-time token was consumed.
	PANKey        string
	PANKeyVersion int
	PANCiphertext []byte
	CardExpiry    string
	Route         string
	IssuerSTAN    string
	IssuerTxTime  string
	RRN           string
	ApprovalCode  string
	RC            string
	State         State
	// Remaining is what of an approved sale is still charged; a cancel or
	// refund in state Forwarded holds its Amount reserved from it.
	Remaining  int64
	OriginalID int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// AuthKey is the MAC key label of the listener the request came on
	// ("" on a plain listener).
	AuthKey string
	// ContentHash identifies the request's content besides its key and
	// card: a repeat of the key is answered from this row only when equal.
	ContentHash string
}

// Scope is where a terminal request may act: a cancel or refund finds its
// sale only among those made on the same listener, terminal (DE 41),
// merchant (DE 42) and MAC key.
type Scope struct {
	Listener, TerminalID, MerchantID, AuthKey string
}

// Errors callers decide on.
var (
	ErrDuplicate = errors.New("journal: duplicate request")
	ErrNotFound  = errors.New("journal: not found")
	ErrExceeds   = errors.New("journal: amount exceeds what remains")
	// ErrAmbiguous: more than one sale matches a refund's reference.
	ErrAmbiguous = errors.New("journal: more than one transaction matches")
	// ErrNotReserved: the cancel holds no reservation (it was answered or
	// released already).
	ErrNotReserved = errors.New("journal: cancel holds no reservation")
)

// Options tune durability.
type Options struct {
	// Durable makes every commit fsync (SQLite synchronous=FULL). Default
	// true in the switch; false only for the journal-off benchmark.
	Durable bool
	// MaxBatch caps how many writes share one commit. Default 256.
	MaxBatch int
	// Fault, when set, is asked before each write with the write's
	// operation (OpBegin, OpSet, ...); a non-nil error fails that write as
	// a failed commit would (nothing of it is applied, the caller gets the
	// error wrapped). For tests that need the journal to fail on demand
	// (a full disk, a lost volume) in-process; nil in production. Reads are
	// never faulted. It is called from the writer's goroutine: it must be
	// safe for concurrent use and must not block.
	Fault func(op string) error
	// OnCommit, when set, is told how long each group commit took (begin
	// to commit, fsync included), how many writes it carried and the error
	// that failed the whole commit (nil when it committed): the switch's
	// journal commit metrics. Called from the writer's goroutine: it must
	// not block.
	OnCommit func(d time.Duration, writes int, err error)
}

// Write operations, as Options.Fault sees them.
const (
	OpBegin     = "begin"
	OpSet       = "set"
	OpCancel    = "cancel"
	OpEvent     = "event"
	OpRestore   = "restore"
	OpEnqueue   = "enqueue"
	OpSAFAssign = "saf_assign"
	OpSAFResult = "saf_result"
	OpProbe     = "probe"
	OpSequence  = "sequence"
)

// Journal is the SQLite journal with a group-committing writer.
type Journal struct {
	db      *sqlitedb.DB
	writes  chan *write
	stop    chan struct{}
	stopped sync.WaitGroup
	opts    Options
	now     func() time.Time
}

type write struct {
	op string
	fn func(*sql.Tx) error
	// single: fn runs one statement, which SQLite undoes by itself when it
	// fails, so it needs no savepoint (they cost about a third of a write).
	single bool
	err    error
	done   chan struct{}
}

// Open opens or creates the journal file and starts its committer.
func Open(path string, opts Options) (*Journal, error) {
	sync := sqlitedb.SyncNormal
	if opts.Durable {
		sync = sqlitedb.SyncFull
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	db, err := sqlitedb.Open(path, sync, schema+sequenceSchema, true)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := migrate(db.W); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	j := &Journal{db: db, writes: make(chan *write, 4096), stop: make(chan struct{}), opts: opts, now: time.Now}
	j.stopped.Add(1)
	go j.commitLoop()
	return j, nil
}

// Close stops the committer after the writes already submitted and closes
// the file.
func (j *Journal) Close() error {
	close(j.stop)
	j.stopped.Wait()
	return j.db.Close()
}

// exec runs fn in a transaction shared with other concurrent writes; it
// returns once that transaction is committed (fsync'd when Durable).
// Each fn runs under its own savepoint, so one failing write does not undo
// the others.
func (j *Journal) exec(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return j.submit(ctx, &write{op: op, fn: fn, done: make(chan struct{})})
}

// exec1 is exec for a fn that runs exactly one statement.
func (j *Journal) exec1(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	return j.submit(ctx, &write{op: op, fn: fn, single: true, done: make(chan struct{})})
}

func (j *Journal) submit(ctx context.Context, w *write) error {
	if j.opts.Fault != nil {
		if err := j.opts.Fault(w.op); err != nil {
			return fmt.Errorf("journal: commit (%s, injected): %w", w.op, err)
		}
	}
	select {
	case j.writes <- w:
	case <-j.stop:
		return errors.New("journal: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once submitted, wait for the commit even if ctx ends: the caller must
	// know whether its write is durable.
	<-w.done
	return w.err
}

func (j *Journal) commitLoop() {
	defer j.stopped.Done()
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
		// Take whatever else is already waiting: that is the group.
	more:
		for len(batch) < j.opts.MaxBatch {
			select {
			case w := <-j.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		j.commit(batch)
	}
}

func (j *Journal) commit(batch []*write) {
	var failed error
	if j.opts.OnCommit != nil {
		start := time.Now()
		defer func() { j.opts.OnCommit(time.Since(start), len(batch), failed) }()
	}
	fail := func(err error) {
		failed = err
		for _, w := range batch {
			if w.err == nil {
				w.err = err
			}
			close(w.done)
		}
	}
	tx, err := j.db.W.Begin()
	if err != nil {
		fail(fmt.Errorf("journal: begin: %w", err))
		return
	}
	for _, w := range batch {
		if w.single {
			w.err = w.fn(tx)
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
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("journal: commit: %w", err))
		return
	}
	for _, w := range batch {
		close(w.done)
	}
}

// Probe makes one small durable write (an event row of transaction 0
// saying why): it tells whether the journal accepts writes again after a
// failure.
func (j *Journal) Probe(ctx context.Context, why string) error {
	return j.exec1(ctx, OpProbe, func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (0,?,?,?)`, j.now().UnixMilli(), "journal_probe", why)
		return err
	})
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

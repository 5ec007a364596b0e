package embedded

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kbpay/switch/internal/cpurole"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// getToken reads one tokens row by its number with its use counts
// (usecounts.go); getTokenState only what changes after it is issued.
var (
	getToken      = `SELECT ` + countedColumns + countedFrom + ` WHERE t.token = ?`
	getTokenState = `SELECT t.status, ` + countedUseCount + `, ` + countedUpdatedAt + countedFrom + ` WHERE t.token = ?`
)

// knownTokens bounds how many tokens' issued records a tokenReader keeps
// (a few hundred bytes each).
const knownTokens = 65536

// tokenReader reads tokens rows through the driver on one reader
// connection held for it, the way the journal's writes go (writerConn):
// database/sql's way (a pooled connection taken and given back, arguments
// converted, a Rows with its own goroutine-safe bookkeeping per read) cost
// as much as the read itself. Reads share a snapshot (one SQLite read
// transaction, see takeSnapshot): beginning and ending a transaction for
// each read was about a fifth of a read's CPU. A commit through any handle
// in this process moves the file's write generation (vaultGenerations)
// before its caller hears of it, and a read taken after that move does not
// use the snapshot taken before it, so it sees every commit of this
// process that ended before it began; one from outside the process (which
// the data folder's lock is there to prevent) within maxStateAge. Reads
// are serialised on the one connection, and run by one goroutine of the
// reader's (run): SQLite's code needs a deep stack, which a payment's
// goroutine would grow (copy) for each read; the reader's keeps it. Each
// takes a few µs, and the payment path makes
// at most one.
//
// It keeps what a record has when it is issued and never changes after
// (card, keys, expiry, kind, domain, use limit: no statement updates them,
// and a token number is never issued again: deleted rows stay), so a
// token read before is read again as its status, use count and update
// time only, from the file like any read.
type tokenReader struct {
	reqs    chan readRequest
	answers sync.Pool // of chan readAnswer, buffered 1
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	// writes is the file's write generation (vaultGenerations.writes).
	writes *atomic.Uint64

	// Only run's goroutine uses these.
	c     *writerConn
	dest  []driver.Value
	state []driver.Value
	known map[string]store.TokenRecord
	snap  snapshot
	// open says whether a snapshot is open (set by run's goroutine only;
	// atomic so that tests may look).
	open atomic.Bool
	// release ends a snapshot maxStateAge after it began, read or not, so
	// that an idle reader keeps no WAL frames from being checkpointed.
	release *time.Timer
}

// snapshot is the read transaction the reads share, when open: begun at
// at, taken at write generation gen (loaded before it began). Closed, gen
// is the last read's (seen: there was one).
type snapshot struct {
	seen bool
	gen  uint64
	at   time.Time
}

type readRequest struct {
	token  string
	now    time.Time // the use's (or read's) time: how old the snapshot is
	answer chan readAnswer
}

type readAnswer struct {
	rec store.TokenRecord
	err error
}

// openTokenReader holds a connection of db's for the reader, with the use
// counts file at countsPath attached to it (as uses).
func openTokenReader(db *sql.DB, countsPath string, writes *atomic.Uint64) (*tokenReader, error) {
	c, err := openWriterConn(db)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if _, err := c.conn.ExecContext(context.Background(), `ATTACH DATABASE ? AS uses`, countsPath); err != nil {
		return nil, errors.Join(fmt.Errorf("vault: attaching the use counts: %w", err), c.close())
	}
	release := time.NewTimer(maxStateAge)
	release.Stop()
	r := &tokenReader{reqs: make(chan readRequest), stop: make(chan struct{}), done: make(chan struct{}), writes: writes,
		c: c, dest: make([]driver.Value, tokenFields), state: make([]driver.Value, 3), known: map[string]store.TokenRecord{},
		release: release}
	r.answers.New = func() any { return make(chan readAnswer, 1) }
	go r.run()
	return r, nil
}

// tokenFields is how many columns tokenColumns names.
const tokenFields = 16

// close stops run (after the read it is doing) and gives the connection
// back.
func (r *tokenReader) close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return r.c.close()
}

func (r *tokenReader) run() {
	cpurole.Set(cpurole.Vault)
	defer close(r.done)
	for {
		select {
		case req := <-r.reqs:
			rec, err := r.read(req.token, req.now)
			req.answer <- readAnswer{rec: rec, err: err}
		case <-r.release.C:
			r.endSnapshot()
		case <-r.stop:
			r.endSnapshot()
			return
		}
	}
}

// takeSnapshot makes the read at now see every commit this process made
// before it: the open snapshot serves it unless the write generation moved
// since it began or now is maxStateAge or more from the time it began at,
// either way (the kept states' rule, tokenStates.get). Otherwise the read
// runs in a transaction of its own (as SQLite runs a statement outside
// one) when the generation moved since the last read, and a new snapshot
// begins with it (SQLite takes it at the read) when it did not: a
// snapshot's BEGIN and COMMIT are paid only where reads go on sharing it,
// not by every read when every payment commits (one-time numbers).
func (r *tokenReader) takeSnapshot(now time.Time) error {
	gen := r.writes.Load() // before the snapshot: a commit during it moves it past gen
	if r.open.Load() && r.snap.gen == gen && now.Sub(r.snap.at) < maxStateAge && r.snap.at.Sub(now) < maxStateAge {
		return nil
	}
	r.endSnapshot()
	if !r.snap.seen || r.snap.gen != gen {
		r.snap = snapshot{seen: true, gen: gen}
		return nil
	}
	if _, err := r.c.exec("BEGIN"); err != nil {
		// A transaction left open by a failed end: end it, and begin again.
		_, _ = r.c.exec("ROLLBACK")
		if _, err := r.c.exec("BEGIN"); err != nil {
			return fmt.Errorf("vault: beginning a read: %w", err)
		}
	}
	r.snap = snapshot{seen: true, gen: gen, at: now}
	r.open.Store(true)
	r.release.Reset(maxStateAge)
	return nil
}

// snapshotOpen reports whether reads share a snapshot now.
func (r *tokenReader) snapshotOpen() bool { return r.open.Load() }

// endSnapshot ends the open snapshot, if any.
func (r *tokenReader) endSnapshot() {
	if !r.open.Load() {
		return
	}
	r.open.Store(false)
	r.release.Stop()
	if _, err := r.c.exec("COMMIT"); err != nil {
		_, _ = r.c.exec("ROLLBACK")
	}
}

// get reads token's row at now (the use's time, which takeSnapshot
// judges the snapshot's age by): store.ErrNotFound when there is none. It
// gives up when ctx ends, before or while the read waits its turn; a
// request already taken is still answered, into a channel then left to it
// (never handed to another read).
func (r *tokenReader) get(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: reading token: %w", err)
	}
	req := readRequest{token: token, now: now, answer: r.answers.Get().(chan readAnswer)}
	select {
	case r.reqs <- req:
	case <-r.done:
		r.answers.Put(req.answer)
		return store.TokenRecord{}, errVaultClosed
	case <-ctx.Done():
		r.answers.Put(req.answer)
		return store.TokenRecord{}, fmt.Errorf("vault: reading token: %w", ctx.Err())
	}
	select {
	case a := <-req.answer:
		r.answers.Put(req.answer)
		return a.rec, a.err
	case <-ctx.Done():
		return store.TokenRecord{}, fmt.Errorf("vault: reading token: %w", ctx.Err())
	}
}

// read is get on run's goroutine, in a snapshot (takeSnapshot); a failed
// read ends it.
func (r *tokenReader) read(token string, now time.Time) (store.TokenRecord, error) {
	if err := r.takeSnapshot(now); err != nil {
		return store.TokenRecord{}, err
	}
	rec, err := r.readRow(token)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		r.endSnapshot()
	}
	return rec, err
}

// readRow reads token's row in the open snapshot.
func (r *tokenReader) readRow(token string) (store.TokenRecord, error) {
	if rec, ok := r.known[token]; ok {
		found, err := r.query(getTokenState, r.state, token)
		if err != nil || !found {
			return store.TokenRecord{}, err
		}
		var status string
		var updated int64
		if err := driverRow(r.state).Scan(&status, &rec.UseCount, &updated); err != nil {
			return store.TokenRecord{}, fmt.Errorf("vault: reading token state: %w", err)
		}
		rec.Status, rec.UpdatedAt = store.TokenStatus(status), time.UnixMilli(updated)
		if rec.Status != store.TokenActive && rec.Status != store.TokenSuspended && rec.Status != store.TokenDeleted {
			return store.TokenRecord{}, fmt.Errorf("vault: token record has unknown status %q", status)
		}
		// The caller's own copies: nothing it does reaches the kept record.
		rec.PANCiphertext, rec.PANHash = bytes.Clone(rec.PANCiphertext), bytes.Clone(rec.PANHash)
		return rec, nil
	}
	found, err := r.query(getToken, r.dest, token)
	if err != nil || !found {
		return store.TokenRecord{}, err
	}
	rec, err := sqlstore.ScanToken(driverRow(r.dest))
	if err != nil {
		return store.TokenRecord{}, err
	}
	r.keep(rec)
	return rec, nil
}

// keep remembers rec's issued parts; when full, one entry picked by map
// iteration (effectively at random) makes room.
func (r *tokenReader) keep(rec store.TokenRecord) {
	if len(r.known) >= knownTokens {
		for k := range r.known {
			delete(r.known, k)
			break
		}
	}
	rec.PANCiphertext, rec.PANHash = bytes.Clone(rec.PANCiphertext), bytes.Clone(rec.PANHash)
	r.known[rec.Token] = rec
}

// query runs read q with token into dest: found false when no row
// matched (store.ErrNotFound as err).
func (r *tokenReader) query(q string, dest []driver.Value, token string) (found bool, err error) {
	err = r.c.conn.Raw(func(dc any) error {
		s, err := r.c.stmt(dc, q)
		if err != nil {
			return err
		}
		qc, ok := s.(driver.StmtQueryContext)
		if !ok {
			return errors.New("vault: the SQLite driver cannot query with a context")
		}
		rows, err := qc.QueryContext(context.Background(), r.c.named([]any{token}))
		if err != nil {
			return err
		}
		err = rows.Next(dest)
		if cerr := rows.Close(); err == nil || errors.Is(err, io.EOF) {
			found = err == nil
			err = cerr
		}
		return err
	})
	switch {
	case err != nil:
		return false, fmt.Errorf("vault: reading token: %w", err)
	case !found:
		return false, store.ErrNotFound
	}
	return true, nil
}

// driverRow is a row as the driver returned it, scanned into the few
// destination types a tokens row needs (sqlstore.ScanToken's).
type driverRow []driver.Value

func (row driverRow) Scan(dest ...any) error {
	if len(dest) != len(row) {
		return fmt.Errorf("vault: %d columns scanned into %d values", len(row), len(dest))
	}
	for i, d := range dest {
		if err := assign(d, row[i]); err != nil {
			return fmt.Errorf("vault: column %d: %w", i+1, err)
		}
	}
	return nil
}

func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
			return nil
		case []byte:
			*d = string(x)
			return nil
		}
	case *[]byte:
		switch x := v.(type) {
		case []byte:
			*d = append([]byte(nil), x...) // the driver's buffer is not ours to keep
			return nil
		case string:
			*d = []byte(x)
			return nil
		}
	case *int64:
		if x, ok := v.(int64); ok {
			*d = x
			return nil
		}
	case *int:
		if x, ok := v.(int64); ok {
			*d = int(x)
			return nil
		}
	}
	return fmt.Errorf("%T cannot be read into %T", v, dest)
}

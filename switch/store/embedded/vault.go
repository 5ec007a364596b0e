package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const vaultSchema = `
CREATE TABLE IF NOT EXISTS tokens (
	token           TEXT PRIMARY KEY,
	pan_key         TEXT NOT NULL,
	pan_key_version INTEGER NOT NULL,
	pan_ct          BLOB NOT NULL,
	pan_hash        BLOB NOT NULL,
	hash_version    INTEGER NOT NULL,
	masked_pan      TEXT NOT NULL,
	card_expiry     TEXT NOT NULL,
	expires_at      INTEGER NOT NULL,
	status          TEXT NOT NULL,
	kind            TEXT NOT NULL,
	domain          TEXT NOT NULL,
	use_count       INTEGER NOT NULL DEFAULT 0,
	max_uses        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_pan_hash ON tokens(pan_hash);
`

const (
	tokenColumns = sqlstore.TokenColumns
	insertToken  = `INSERT INTO tokens (` + tokenColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
)

// vault is the embedded token vault (store.Tokens), one SQLite file.
// Writes go through one connection (SQLite has one writer); reads use a
// pool. Uses (the payment path's one vault write) are group-committed by
// one goroutine: see recordUses.
type vault struct {
	w, r *sql.DB
	db   *sqlitedb.DB
	// useStmt is the Use statement, prepared on the writer at open (a
	// batch's transaction holds the writer's only connection, so it could
	// not be prepared then).
	useStmt *sql.Stmt
	// countsDB is the use counts file (vault-uses.db): device token uses
	// are added there, so that they leave the vault file, and with it the
	// token reader's page cache, alone (useCounts).
	countsDB *sqlitedb.DB
	// addStmt adds flushed use counts (useCounts) on countsDB's writer.
	addStmt *sql.Stmt
	// reader reads rows for the payment path (Use, Get) off database/sql.
	reader *tokenReader
	// states answers device token uses from the state last read while no
	// status changed (tokenStates).
	states *tokenStates
	// gens are the file's generations in this process (vaultGenerations).
	gens    *vaultGenerations
	counts  *useCounts
	uses    chan useRequest // unbuffered: a request sent is a request answered
	stop    chan struct{}
	stopped chan struct{}
	close   sync.Once
	// closeErr is the last flush's failure, set before stopped closes.
	closeErr error
	// log tells of use count flushes that fail (flushLog).
	log *zap.Logger
}

// openVault opens or creates the vault database file at path. A durable
// store commits with synchronous=FULL, as its journal: a one-time card
// number's use committed with NORMAL could be lost with the OS or the
// power after the sale was approved, and the number used again.
func openVault(path string, opts Options) (*vault, error) {
	sync := sqlitedb.SyncNormal
	if opts.Durable {
		sync = sqlitedb.SyncFull
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	db, err := sqlitedb.Open(path, sync, vaultSchema, false)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	useStmt, err := db.W.Prepare(useQuery)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("vault: preparing the use statement: %w", err)
	}
	countsDB, err := openUseCounts(path, sync)
	if err != nil {
		_ = errors.Join(useStmt.Close(), db.Close())
		return nil, err
	}
	closeAll := func(err error, closers ...func() error) (*vault, error) {
		for _, c := range append(closers, useStmt.Close, countsDB.Close, db.Close) {
			_ = c()
		}
		return nil, err
	}
	addStmt, err := countsDB.W.Prepare(addUses)
	if err != nil {
		return closeAll(fmt.Errorf("vault: preparing the use count statement: %w", err))
	}
	gens, err := generationsOf(path)
	if err != nil {
		return closeAll(err, addStmt.Close)
	}
	reader, err := openTokenReader(db.R, useCountsPath(path), &gens.writes)
	if err != nil {
		return closeAll(err, addStmt.Close)
	}
	s := &vault{w: db.W, r: db.R, db: db, countsDB: countsDB, useStmt: useStmt, addStmt: addStmt, reader: reader,
		states: newTokenStates(gens), gens: gens, counts: newUseCounts(),
		uses: make(chan useRequest), stop: make(chan struct{}), stopped: make(chan struct{}), log: log}
	go s.recordUses()
	return s, nil
}

// Close answers the uses already taken, writes the pending use counts,
// then closes the database.
func (s *vault) Close() error {
	s.close.Do(func() { close(s.stop) })
	<-s.stopped
	return errors.Join(s.closeErr, s.reader.close(), s.useStmt.Close(), s.addStmt.Close(), s.db.Close(), s.countsDB.Close())
}

func (s *vault) Insert(ctx context.Context, rec store.TokenRecord) error {
	defer s.wrote()
	args, err := sqlstore.TokenArgs(rec)
	if err != nil {
		return err
	}
	if _, err = s.w.ExecContext(ctx, insertToken, args...); err != nil {
		if sqlitedb.IsUnique(err) {
			return fmt.Errorf("vault: inserting token: %w", store.ErrDuplicate)
		}
		return fmt.Errorf("vault: inserting token: %w", err)
	}
	return nil
}

// InsertMany inserts many records in one transaction (bulk provisioning
// and benchmarks).
func (s *vault) InsertMany(ctx context.Context, recs []store.TokenRecord) error {
	defer s.wrote()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vault: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, insertToken)
	if err != nil {
		return fmt.Errorf("vault: prepare: %w", err)
	}
	defer stmt.Close()
	for _, rec := range recs {
		args, err := sqlstore.TokenArgs(rec)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			if sqlitedb.IsUnique(err) {
				err = store.ErrDuplicate
			}
			return fmt.Errorf("vault: inserting token batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: commit: %w", err)
	}
	return nil
}

// wrote moves the file's write generation after a commit (or a failed
// one: a spare move costs a snapshot), before the caller hears of it: the
// token reader's next read takes a new snapshot, which sees it.
func (s *vault) wrote() { s.gens.writes.Add(1) }

// Get reads token from the file, and keeps a device token's state for its
// next use (tokenStates): a payment reads the token (its rules) before it
// uses it.
func (s *vault) Get(ctx context.Context, token string) (store.TokenRecord, error) {
	s.counts.flush.RLock()
	defer s.counts.flush.RUnlock()
	rec, err := s.readKept(ctx, token, time.Now())
	if err != nil {
		return store.TokenRecord{}, err
	}
	return s.counts.withPending(rec), nil
}

func (s *vault) SetStatus(ctx context.Context, token string, status store.TokenStatus, now time.Time) (store.TokenRecord, error) {
	row := s.db.WQueryRow(ctx, `UPDATE tokens SET status = ?, updated_at = ?
		WHERE token = ? AND status <> 'deleted' RETURNING `+tokenColumns, string(status), now.UnixMilli(), token)
	rec, err := scanToken(row)
	// After the update's commit (or its failure: a spare move costs a
	// read), before the reads below and before the caller hears of it: a
	// use that starts afterwards reads the token again, through any
	// handle.
	s.states.statusChanged()
	s.wrote()
	if errors.Is(err, store.ErrNotFound) {
		if cur, gerr := s.Get(ctx, token); gerr == nil && cur.Status == store.TokenDeleted {
			return cur, store.ErrFinal
		}
	}
	if err != nil {
		return rec, err
	}
	// The row the update returned lacks the use counts file's uses, and
	// may miss uses a flush committed since (no longer pending): read it
	// again, with both, as Get does. The update is committed, so the read
	// sees it.
	if cur, err := s.Get(ctx, token); err == nil {
		return cur, nil
	}
	return s.counts.withPending(rec), nil
}

// Use hands the use to recordUses and waits for its answer (SQLite does
// no better with two writers than with one: they would queue on its lock).
//
// A token without a use limit is checked by a read and its use counted in
// memory (useUnlimited); only a limited one takes the writer.
func (s *vault) Use(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	if rec, handled, err := s.useUnlimited(ctx, token, now); handled {
		return rec, err
	}
	req := useRequest{token: token, now: now.UnixMilli(), answer: make(chan useAnswer, 1)}
	select {
	case s.uses <- req:
	case <-ctx.Done():
		return store.TokenRecord{}, fmt.Errorf("vault: recording a use: %w", ctx.Err())
	case <-s.stopped:
		return store.TokenRecord{}, errVaultClosed
	}
	// Taken: the answer follows the commit (no context: the use may be
	// recorded, and the caller must hear whether it was).
	a := <-req.answer
	return a.rec, a.err
}

func (s *vault) FindByPANHash(ctx context.Context, hash []byte) ([]store.TokenRecord, error) {
	s.counts.flush.RLock()
	defer s.counts.flush.RUnlock()
	out, err := all(ctx, s.db, sqlstore.ScanToken, `SELECT `+tokenColumns+` FROM tokens WHERE pan_hash = ? ORDER BY created_at`, hash)
	if err != nil {
		return nil, fmt.Errorf("vault: query by PAN hash: %w", err)
	}
	for i := range out {
		stored, err := s.storedUses(ctx, out[i].Token)
		if err != nil {
			return nil, err
		}
		stored.addTo(&out[i])
		out[i] = s.counts.withPending(out[i])
	}
	return out, nil
}

// Count returns how many tokens the vault holds.
func (s *vault) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}

// scanToken reads the row an UPDATE ... RETURNING answers: store.ErrNotFound
// when it touched none.
func scanToken(row *sql.Row) (store.TokenRecord, error) {
	rec, err := sqlstore.ScanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TokenRecord{}, store.ErrNotFound
	}
	return rec, err
}

package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// useCountFlush is how long the use of an unlimited token may wait to be
// added to its stored count (see useCounts); after failed flushes the next
// waits twice as long as the last, up to maxFlushRetry. Each flush is a
// commit to the use counts file (an fsync when durable) that device token
// reads wait for. 250 ms against 20 ms, alternating rounds on a
// 1,000,000-token vault, when the counts were still added to the tokens
// rows: 20 % less switchd CPU per transaction on the token path at 16 and
// 64 in flight (docs/performance.md). A crash loses at most that long of
// use counts, which are figures.
const (
	useCountFlush = 250 * time.Millisecond
	maxFlushRetry = 5 * time.Second
)

// flushFailureLogEvery is how often failing flushes are logged (the
// first at once).
const flushFailureLogEvery = time.Minute

// useCounts are the uses of unlimited tokens (max_uses 0: device tokens)
// not yet added to their stored counts. Such a use limits nothing: the
// store's checks (active, unexpired) are a read, and the count is a
// figure to show, so it is added with the others every useCountFlush in
// one transaction of the use counts file (usecounts.go) instead of one
// commit (a WAL write of its own) per payment. A token with a use limit
// (one-time card numbers) never comes here: its use is the writer's
// conditional update, committed before it is answered. Reads through
// this handle add the uses still pending; a crash loses those not flushed
// yet (the last useCountFlush of them, or more while flushes fail: they
// are logged), as a figure (no check depends on them), and another
// process sharing the vault sees them once
// flushed. A durable flush's commit syncs the file while it holds flush
// (a few ms every useCountFlush at most), which device token reads wait
// for.
type useCounts struct {
	// flush is held by a flush only across its commit and forgetting the
	// counts it wrote (not while it waits for the writer), and shared by
	// every read that adds pending counts to a stored row, so that none
	// adds a count the row it read already holds, nor misses one.
	flush sync.RWMutex

	mu      sync.Mutex
	pending map[string]pendingUses
	// inflight are the counts a flush took and has not committed: still
	// added by reads (the rows do not hold them yet).
	inflight map[string]pendingUses
	closed   bool
	kick     chan struct{} // a count is pending (buffered 1)
}

type pendingUses struct {
	n    int
	last int64 // Unix milliseconds of the latest
}

func newUseCounts() *useCounts {
	return &useCounts{pending: map[string]pendingUses{}, kick: make(chan struct{}, 1)}
}

// add counts one use of token at now (ms) and returns how many are
// pending for it, this one included.
func (c *useCounts) add(token string, now int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, errVaultClosed
	}
	p := c.pending[token]
	p.n++
	p.last = max(p.last, now)
	c.pending[token] = p
	if len(c.pending) == 1 && p.n == 1 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return p.n + c.inflight[token].n, nil
}

// withPending is rec with the uses this handle has not flushed yet
// (pending or being flushed).
func (c *useCounts) withPending(rec store.TokenRecord) store.TokenRecord {
	c.mu.Lock()
	p, ok := c.pending[rec.Token]
	q, inflight := c.inflight[rec.Token]
	c.mu.Unlock()
	if inflight {
		p = p.merge(q)
	}
	if ok || inflight {
		p.addTo(&rec)
	}
	return rec
}

// addTo adds p to rec: its uses to the count, its latest to the update
// time when later.
func (p pendingUses) addTo(rec *store.TokenRecord) {
	rec.UseCount += p.n
	if t := time.UnixMilli(p.last); t.After(rec.UpdatedAt) {
		rec.UpdatedAt = t
	}
}

func (p pendingUses) merge(q pendingUses) pendingUses {
	return pendingUses{n: p.n + q.n, last: max(p.last, q.last)}
}

// take hands the pending counts to a flush (closing: and takes no
// more); they are in flight until it calls written or putBack. One flush
// at a time.
func (c *useCounts) take(closing bool) map[string]pendingUses {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = c.closed || closing
	if len(c.pending) == 0 {
		return nil
	}
	c.inflight = c.pending
	c.pending = map[string]pendingUses{}
	return c.inflight
}

// written forgets the counts in flight, committed (under flush).
func (c *useCounts) written() {
	c.mu.Lock()
	c.inflight = nil
	c.mu.Unlock()
}

// putBack returns the counts in flight, which a flush could not write,
// to the pending ones for the next flush.
func (c *useCounts) putBack(taken map[string]pendingUses) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tok, p := range taken {
		c.pending[tok] = c.pending[tok].merge(p)
	}
	c.inflight = nil
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// countedUses is one token's pending uses as addUses (usecounts.go) reads
// them.
type countedUses struct {
	Token string `json:"t"`
	N     int    `json:"n"`
	Last  int64  `json:"l"`
}

// useUnlimited records a use of token at now when it has no use limit
// (handled: the answer is final); a token with a limit is left to the
// writer (handled false).
func (s *vault) useUnlimited(ctx context.Context, token string, now time.Time) (rec store.TokenRecord, handled bool, err error) {
	select {
	case <-s.stopped:
		return store.TokenRecord{}, true, errVaultClosed
	default:
	}
	s.counts.flush.RLock()
	defer s.counts.flush.RUnlock()
	rec, err = s.tokenState(ctx, token, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.TokenRecord{}, true, store.ErrNotUsable
	case err != nil:
		return store.TokenRecord{}, true, fmt.Errorf("vault: recording a use: %w", err)
	case rec.MaxUses > 0:
		return store.TokenRecord{}, false, nil
	case rec.Status != store.TokenActive || rec.ExpiresAt.UnixMilli() <= now.UnixMilli():
		return store.TokenRecord{}, true, store.ErrNotUsable
	}
	ms := now.UnixMilli()
	n, err := s.counts.add(token, ms)
	if err != nil {
		return store.TokenRecord{}, true, err
	}
	pendingUses{n: n, last: ms}.addTo(&rec)
	return rec, true, nil
}

// tokenState is token's record, kept (tokenStates) or read: a device
// token's read is kept. Under counts.flush, shared.
func (s *vault) tokenState(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: reading token: %w", err) // as the reader says it
	}
	if rec, ok := s.states.get(token, now); ok {
		return rec, nil
	}
	return s.readKept(ctx, token, now)
}

// readKept reads token from the file and keeps a device token's state, as
// read at now. Under counts.flush, shared.
func (s *vault) readKept(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	gen := s.states.gen.Load() // before the read: a change committed during it moves it past gen
	rec, err := s.reader.get(ctx, token, now)
	if err == nil && rec.MaxUses == 0 {
		s.states.put(rec, gen, now)
	}
	return rec, err
}

// flushCounts adds the pending counts to the stored ones in one
// transaction; on failure they stay pending for the next flush (closing:
// the failure is returned, for Close, and the counts are lost).
func (s *vault) flushCounts(closing bool) error {
	taken := s.counts.take(closing)
	if len(taken) == 0 {
		return nil
	}
	counts := make([]countedUses, 0, len(taken))
	for tok, p := range taken {
		counts = append(counts, countedUses{Token: tok, N: p.n, Last: p.last})
	}
	slices.SortFunc(counts, func(a, b countedUses) int { return strings.Compare(a.Token, b.Token) })
	arg, err := json.Marshal(counts)
	if err == nil {
		err = s.commitCounts(string(arg), taken)
	}
	if err != nil {
		if !closing {
			s.counts.putBack(taken)
		}
		return fmt.Errorf("vault: adding %d tokens' use counts: %w", len(taken), err)
	}
	return nil
}

// commitCounts runs addUses (arg) in a transaction of the use counts
// file. It waits for that file's writer (another handle's flush, up to
// SQLite's busy timeout) holding no lock, so reads and uses go on
// meanwhile, adding the counts in flight; only the commit and forgetting
// them hold counts.flush.
func (s *vault) commitCounts(arg string, taken map[string]pendingUses) error {
	ctx := context.Background()
	tx, err := s.countsDB.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.addStmt).ExecContext(ctx, arg); err != nil {
		_ = tx.Rollback()
		return err
	}
	s.counts.flush.Lock()
	defer s.counts.flush.Unlock()
	// A Commit that fails after SQLite committed (the rare I/O error on
	// the last step) leaves the uses pending: the next flush adds them
	// again. Inherent to a counter added outside its reader's transaction;
	// the count errs towards more uses, never fewer.
	err = tx.Commit()
	s.wrote()
	if err != nil {
		return err
	}
	s.states.flushed(taken)
	s.counts.written()
	return nil
}

// flushLog logs failed use count flushes, at most one line per
// flushFailureLogEvery while they go on, and the first that succeeds
// after them; it picks how long the next flush waits. Only recordUses
// uses it.
type flushLog struct {
	log      *zap.Logger
	failures int       // since the last flush that succeeded
	logged   time.Time // the last failure line
	retry    time.Duration
}

// flushed notes a flush's outcome at now and returns how long to wait
// before the next attempt (0: none is due; the next use arms one).
func (l *flushLog) flushed(err error, now time.Time) time.Duration {
	if err == nil {
		if l.failures > 0 {
			l.log.Info("vault: device token use counts written again", zap.Int("failed_flushes", l.failures))
		}
		l.failures, l.retry = 0, 0
		return 0
	}
	l.failures++
	l.retry = min(max(2*l.retry, 2*useCountFlush), maxFlushRetry)
	if l.failures == 1 || now.Sub(l.logged) >= flushFailureLogEvery {
		l.log.Error("vault: device token use counts not written; kept for the next attempt",
			zap.Error(err), zap.Int("failed_flushes", l.failures), zap.Duration("retry_in", l.retry))
		l.logged = now
	}
	return l.retry
}

// closed logs the closing flush's failure: the counts it held are lost.
func (l *flushLog) closed(err error) {
	if err != nil {
		l.log.Error("vault: device token use counts lost at close", zap.Error(err))
	}
}

package embedded

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// useCountFlush is how long the use of an unlimited token may wait to be
// appended to the use log (see useCounts); after failed attempts the next
// waits twice as long as the last, up to maxFlushRetry. useCountFold is
// how long logged counts may wait to be folded into the tokens rows, and
// foldTokens how many tokens' counts may wait (memory: a map entry each,
// twice); a fold adds at most maxFoldTokens tokens per transaction, so
// that the writer (a one-time number's use, a status change) waits for
// no more than that. Each fold is a vault commit, after which SQLite drops
// the token reader's page cache (a connection's cache goes whenever the
// file changed since its last read): folding every useCountFlush, as the
// counts were added before the log, cost a page write per token and made
// every read go back to the file for its pages (docs/performance.md).
const (
	useCountFlush = 250 * time.Millisecond
	maxFlushRetry = 5 * time.Second
	useCountFold  = 30 * time.Second
	foldTokens    = 65536
	maxFoldTokens = 4096
)

// flushFailureLogEvery is how often failing flushes are logged (the
// first at once).
const flushFailureLogEvery = time.Minute

// addUses adds the counted uses of many tokens in one statement: ?1 is a
// JSON array of {"t": token, "n": uses, "l": latest use in Unix ms}.
const addUses = `UPDATE tokens SET use_count = use_count + u.n, updated_at = max(updated_at, u.l)
	FROM (SELECT value->>'t' AS t, value->>'n' AS n, value->>'l' AS l FROM json_each(?1)) AS u
	WHERE tokens.token = u.t`

// useCounts are the uses of unlimited tokens (max_uses 0: device tokens)
// not yet added to their stored counts. Such a use limits nothing: the
// store's checks (active, unexpired) are a read, and the count is a
// figure to show, so instead of one commit (a WAL write of its own) per
// payment, the counts are appended to the use log (useLog) every
// useCountFlush in one statement, and folded from there into the tokens
// rows every useCountFold. A token with a use limit (one-time card
// numbers) never comes here: its use is the writer's conditional update,
// committed before it is answered. Reads through this handle add the uses
// not folded yet (pending, being appended, or logged). A crash loses those
// not appended yet (the last useCountFlush of them, or more while appends
// fail: they are logged), as a figure (no check depends on them); the
// logged ones are folded by the next open (recoverUseLog). Another
// process, or another handle, sees them once folded.
type useCounts struct {
	// flush is held by a fold only across its commit and forgetting the
	// counts it wrote (not while it waits for the writer), and shared by
	// every read that adds unfolded counts to a stored row, so that none
	// adds a count the row it read already holds, nor misses one.
	flush sync.RWMutex

	mu      sync.Mutex
	pending map[string]pendingUses
	// inflight are the counts an append took and has not written: still
	// added by reads.
	inflight map[string]pendingUses
	// logged are the counts appended and not folded (the sum of batches,
	// oldest first, each up to its last log row).
	logged  map[string]pendingUses
	batches []loggedBatch
	closed  bool
	kick    chan struct{} // a count is pending (buffered 1)
}

type loggedBatch struct {
	through int64
	counts  map[string]pendingUses
}

type pendingUses struct {
	n    int
	last int64 // Unix milliseconds of the latest
}

func newUseCounts() *useCounts {
	return &useCounts{pending: map[string]pendingUses{}, logged: map[string]pendingUses{}, kick: make(chan struct{}, 1)}
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
	return p.n + c.inflight[token].n + c.logged[token].n, nil
}

// withPending is rec with the uses this handle has not folded yet
// (pending, being appended or logged).
func (c *useCounts) withPending(rec store.TokenRecord) store.TokenRecord {
	c.mu.Lock()
	p, ok := c.pending[rec.Token]
	q, inflight := c.inflight[rec.Token]
	l, logged := c.logged[rec.Token]
	c.mu.Unlock()
	p = p.merge(q).merge(l)
	if ok || inflight || logged {
		rec.UseCount += p.n
		if t := time.UnixMilli(p.last); t.After(rec.UpdatedAt) {
			rec.UpdatedAt = t
		}
	}
	return rec
}

func (p pendingUses) merge(q pendingUses) pendingUses {
	return pendingUses{n: p.n + q.n, last: max(p.last, q.last)}
}

// take hands the pending counts to an append (closing: and takes no
// more); they are in flight until it calls appended or putBack. One
// append at a time.
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

// appended moves the counts in flight, appended to the log through row
// id through, to the logged ones.
func (c *useCounts) appended(through int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tok, p := range c.inflight {
		c.logged[tok] = c.logged[tok].merge(p)
	}
	c.batches = append(c.batches, loggedBatch{through: through, counts: c.inflight})
	c.inflight = nil
}

// foldable merges the oldest logged batches until they hold at least
// maxTokens tokens (or all of them): k batches, up to log row through.
func (c *useCounts) foldable(maxTokens int) (merged map[string]pendingUses, through int64, k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.batches) == 0 {
		return nil, 0, 0
	}
	merged = c.batches[0].counts
	for k = 1; k < len(c.batches) && len(merged) < maxTokens; k++ {
		if k == 1 {
			merged = maps.Clone(merged)
		}
		for tok, p := range c.batches[k].counts {
			merged[tok] = merged[tok].merge(p)
		}
	}
	return merged, c.batches[k-1].through, k
}

// folded forgets merged, the oldest k batches, now in the tokens rows
// (under flush).
func (c *useCounts) folded(merged map[string]pendingUses, k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tok, p := range merged {
		q := c.logged[tok]
		if q.n -= p.n; q.n > 0 {
			c.logged[tok] = q
		} else {
			delete(c.logged, tok)
		}
	}
	c.batches = slices.Delete(c.batches, 0, k)
}

// unfolded says how many tokens have logged counts not folded, and
// whether any batch waits.
func (c *useCounts) unfolded() (tokens int, waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.logged), len(c.batches) > 0
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

// countedUses is one token's uses as addUses and appendUses read them.
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
	rec.UseCount += n
	if t := time.UnixMilli(ms); t.After(rec.UpdatedAt) {
		rec.UpdatedAt = t
	}
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
	gen := s.states.gen.Load() // before the read: a change committed during it moves it past gen
	rec, err := s.reader.get(ctx, token)
	if err == nil && rec.MaxUses == 0 {
		s.states.put(rec, gen, now)
	}
	return rec, err
}

// appendCounts appends the pending counts to the use log; on failure
// they stay pending for the next attempt (closing: the failure is
// returned, for Close, and the counts are lost).
func (s *vault) appendCounts(closing bool) error {
	taken := s.counts.take(closing)
	if len(taken) == 0 {
		return nil
	}
	counts := make([]countedUses, 0, len(taken))
	for tok, p := range taken {
		counts = append(counts, countedUses{Token: tok, N: p.n, Last: p.last})
	}
	through, err := s.countLog.append(counts)
	if err != nil {
		if !closing {
			s.counts.putBack(taken)
		}
		return err
	}
	s.counts.appended(through)
	return nil
}

// foldChunk folds the oldest logged batches, up to maxFoldTokens tokens,
// into the tokens rows in one transaction, then deletes their log rows;
// more says whether batches still wait. On failure they stay logged for
// the next fold. It waits for the writer (another process's transaction,
// up to SQLite's busy timeout) holding no lock, so reads and uses go on
// meanwhile, adding the counts logged; only the commit and forgetting
// them hold counts.flush.
func (s *vault) foldChunk() (more bool, err error) {
	merged, through, k := s.counts.foldable(maxFoldTokens)
	if k == 0 {
		return false, nil
	}
	s.folding.Store(true)
	defer s.folding.Store(false)
	counts := make([]countedUses, 0, len(merged))
	for tok, p := range merged {
		counts = append(counts, countedUses{Token: tok, N: p.n, Last: p.last})
	}
	err = s.foldCounts(counts, s.countLog.writer, through, func(commit func() error) error {
		s.counts.flush.Lock()
		defer s.counts.flush.Unlock()
		// A Commit that fails after SQLite committed (the rare I/O error
		// on the last step) leaves the counts logged: the next fold adds
		// them again. Inherent to a counter added outside its reader's
		// transaction; the count errs towards more uses, never fewer.
		if err := commit(); err != nil {
			return err
		}
		s.states.flushed(merged)
		s.counts.folded(merged, k)
		return nil
	})
	if err != nil {
		return true, fmt.Errorf("vault: folding %d tokens' use counts: %w", len(counts), err)
	}
	// Left in the log, folded rows are skipped by their mark (use_folds)
	// and deleted with the next fold's.
	if err := s.countLog.trim(s.countLog.writer, through); err != nil {
		s.log.Warn("vault: folded use counts left in the use log", zap.Error(err))
	}
	_, more = s.counts.unfolded()
	return more, nil
}

// foldAll folds every logged batch (at close): nil when the log holds
// none of this writer's counts any more.
func (s *vault) foldAll() error {
	for {
		more, err := s.foldChunk()
		if err != nil || !more {
			return err
		}
	}
}

// flushLog logs failed use count appends (or folds: one flushLog each),
// at most one line per flushFailureLogEvery while they go on, and the
// first that succeeds after them; it picks how long the next attempt
// waits. Only recordUses uses it.
type flushLog struct {
	log      *zap.Logger
	step     string // "append" or "fold"
	failures int       // since the last flush that succeeded
	logged   time.Time // the last failure line
	retry    time.Duration
}

// flushed notes a flush's outcome at now and returns how long to wait
// before the next attempt (0: none is due; the next use arms one).
func (l *flushLog) flushed(err error, now time.Time) time.Duration {
	if err == nil {
		if l.failures > 0 {
			l.log.Info("vault: device token use counts written again", zap.String("step", l.step), zap.Int("failed_flushes", l.failures))
		}
		l.failures, l.retry = 0, 0
		return 0
	}
	l.failures++
	l.retry = min(max(2*l.retry, 2*useCountFlush), maxFlushRetry)
	if l.failures == 1 || now.Sub(l.logged) >= flushFailureLogEvery {
		l.log.Error("vault: device token use counts not written; kept for the next attempt",
			zap.String("step", l.step), zap.Error(err), zap.Int("failed_flushes", l.failures), zap.Duration("retry_in", l.retry))
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

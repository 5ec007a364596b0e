package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// useCountFlush is how long the use of an unlimited token may wait to be
// added to its stored count (see useCounts).
const useCountFlush = 20 * time.Millisecond

// addUses adds the counted uses of many tokens in one statement: ?1 is a
// JSON array of {"t": token, "n": uses, "l": latest use in Unix ms}.
const addUses = `UPDATE tokens SET use_count = use_count + u.n, updated_at = max(updated_at, u.l)
	FROM (SELECT value->>'t' AS t, value->>'n' AS n, value->>'l' AS l FROM json_each(?1)) AS u
	WHERE tokens.token = u.t`

// useCounts are the uses of unlimited tokens (max_uses 0: device tokens)
// not yet added to their stored counts. Such a use limits nothing: the
// store's checks (active, unexpired) are a read, and the count is a
// figure to show, so it is added with the others every useCountFlush in
// one transaction instead of one commit (a WAL write of its own) per
// payment. A token with a use limit (one-time card numbers) never comes
// here: its use is the writer's conditional update, committed before it
// is answered. Reads through this handle add the uses still pending; a
// crash loses at most the last useCountFlush of them, as a figure (no
// check depends on them), and another process sharing the vault sees
// them once flushed.
type useCounts struct {
	// flush is held by a flush while it writes and forgets what it took,
	// and shared by every read that adds pending counts to a stored row,
	// so that none adds a count the row it read already holds.
	flush sync.RWMutex

	mu      sync.Mutex
	pending map[string]pendingUses
	closed  bool
	kick    chan struct{} // a count is pending (buffered 1)
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
	return p.n, nil
}

// withPending is rec with the uses this handle has not flushed yet.
func (c *useCounts) withPending(rec store.TokenRecord) store.TokenRecord {
	c.mu.Lock()
	p, ok := c.pending[rec.Token]
	c.mu.Unlock()
	if ok {
		rec.UseCount += p.n
		if t := time.UnixMilli(p.last); t.After(rec.UpdatedAt) {
			rec.UpdatedAt = t
		}
	}
	return rec
}

// take hands over the pending counts (closing: and takes no more).
func (c *useCounts) take(closing bool) map[string]pendingUses {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = c.closed || closing
	if len(c.pending) == 0 {
		return nil
	}
	out := c.pending
	c.pending = map[string]pendingUses{}
	return out
}

// putBack returns counts a flush could not write, for the next one.
func (c *useCounts) putBack(taken map[string]pendingUses) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tok, p := range taken {
		q := c.pending[tok]
		q.n += p.n
		q.last = max(q.last, p.last)
		c.pending[tok] = q
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// countedUses is one token's pending uses as addUses reads them.
type countedUses struct {
	Token string `json:"t"`
	N     int    `json:"n"`
	Last  int64  `json:"l"`
}

// useUnlimited records a use of token at now when it has no use limit
// (handled: the answer is final); a token with a limit is left to the
// writer (handled false).
func (s *vault) useUnlimited(token string, now time.Time) (rec store.TokenRecord, handled bool, err error) {
	select {
	case <-s.stopped:
		return store.TokenRecord{}, true, errVaultClosed
	default:
	}
	s.counts.flush.RLock()
	defer s.counts.flush.RUnlock()
	rec, err = s.reader.get(token)
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

// flushCounts adds the pending counts to the stored ones in one
// transaction; on failure they stay pending for the next flush (closing:
// the failure is returned, for Close).
func (s *vault) flushCounts(closing bool) error {
	s.counts.flush.Lock()
	defer s.counts.flush.Unlock()
	taken := s.counts.take(closing)
	if len(taken) == 0 {
		return nil
	}
	counts := make([]countedUses, 0, len(taken))
	for tok, p := range taken {
		counts = append(counts, countedUses{Token: tok, N: p.n, Last: p.last})
	}
	arg, err := json.Marshal(counts)
	if err == nil {
		// One statement: atomic without a transaction of its own.
		_, err = s.addStmt.ExecContext(context.Background(), string(arg))
	}
	if err != nil {
		if !closing {
			s.counts.putBack(taken)
		}
		return fmt.Errorf("vault: adding %d tokens' use counts: %w", len(taken), err)
	}
	return nil
}

package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kbpay/switch/internal/cpurole"
	"github.com/kbpay/switch/switch/store"
)

// useQuery records one use of an active, unexpired token with uses left.
const useQuery = `UPDATE tokens SET use_count = use_count + 1, updated_at = ?1
	WHERE token = ?2 AND status = 'active' AND expires_at > ?1 AND (max_uses = 0 OR use_count < max_uses)
	RETURNING ` + tokenColumns

// maxUseBatch bounds how many uses one vault transaction records.
const maxUseBatch = 128

var errVaultClosed = errors.New("vault: closed")

// useRequest is one Use waiting for recordUses; answer is buffered.
type useRequest struct {
	token  string
	now    int64 // Unix milliseconds
	answer chan useAnswer
}

type useAnswer struct {
	rec store.TokenRecord
	err error
}

// recordUses is the vault's use writer. Every payment with a token records
// a use (the store re-checks status, expiry and uses left as it does), and
// a commit costs SQLite the same WAL locking and page writes for one use
// as for a hundred: uses that arrive while one commits are recorded
// together in the next transaction (group commit, like the journal's).
// Nobody waits for a batch to fill: a lone use is committed at once, alone.
// Each use still gets its own answer, after the commit that recorded it;
// two uses of a one-time token in one batch run in order, so the second
// finds it used, as it would in two transactions.
func (s *vault) recordUses() {
	cpurole.Set(cpurole.Vault)
	defer close(s.stopped)
	batch := make([]useRequest, 0, maxUseBatch)
	var flushAt <-chan time.Time // the pending use counts' flush, when armed
	failures := flushLog{log: s.log}
	for {
		select {
		case req := <-s.uses:
			batch = append(batch[:0], req)
		case <-s.counts.kick:
			if flushAt == nil {
				flushAt = time.After(useCountFlush)
			}
			continue
		case <-flushAt:
			// A failure stays pending, and the next flush waits longer.
			flushAt = nil
			if retry := failures.flushed(s.flushCounts(false), time.Now()); retry > 0 {
				flushAt = time.After(retry)
			}
			continue
		case <-s.stop:
			s.closeErr = s.flushCounts(true)
			failures.closed(s.closeErr)
			return
		}
	more:
		for len(batch) < maxUseBatch {
			select {
			case req := <-s.uses:
				batch = append(batch, req)
			default:
				break more
			}
		}
		s.recordBatch(batch)
	}
}

// recordBatch records a batch in one transaction; a failure other than "not
// usable" rolls it back and records each use alone, so one bad use cannot
// fail the others.
func (s *vault) recordBatch(batch []useRequest) {
	ctx := context.Background()
	if len(batch) == 1 {
		batch[0].answer <- s.useAlone(ctx, batch[0])
		return
	}
	answers := make([]useAnswer, len(batch))
	err := func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt := tx.StmtContext(ctx, s.useStmt)
		for i, req := range batch {
			answers[i] = scanUse(stmt.QueryRowContext(ctx, req.now, req.token))
			if answers[i].err != nil && !errors.Is(answers[i].err, store.ErrNotUsable) {
				_ = tx.Rollback()
				return answers[i].err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		for _, req := range batch {
			req.answer <- s.useAlone(ctx, req)
		}
		return
	}
	s.wrote()
	for i, req := range batch {
		req.answer <- answers[i]
	}
}

// useAlone records one use in a transaction of its own, and moves the
// write generation after it, before its answer goes.
func (s *vault) useAlone(ctx context.Context, req useRequest) useAnswer {
	defer s.wrote()
	return scanUse(s.useStmt.QueryRowContext(ctx, req.now, req.token))
}

func scanUse(row *sql.Row) useAnswer {
	rec, err := scanToken(row)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return useAnswer{err: store.ErrNotUsable}
	case err != nil:
		return useAnswer{err: fmt.Errorf("vault: recording a use: %w", err)}
	}
	return useAnswer{rec: rec}
}

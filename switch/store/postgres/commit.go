package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kbpay/switch/switch/store"
)

// write is one statement for the group committer. It must not fail on a
// business condition (a duplicate key, a row owned by another instance):
// such statements are written to touch no row instead (ON CONFLICT DO
// NOTHING, owner in the WHERE) and the caller tells why afterwards.
type write struct {
	op   string
	sql  string
	args []any
	// scan reads the statement's result rows (called again from the
	// start if the group is retried one by one); nil ignores them.
	scan func(pgx.Rows) error
	// affected is the statement's row count.
	affected int64
	err      error
	done     chan struct{}
}

// exec submits one statement to the group committer and waits until its
// group is committed.
func (s *Store) exec(ctx context.Context, op, sql string, scan func(pgx.Rows) error, args ...any) (int64, error) {
	w := &write{op: op, sql: sql, args: args, scan: scan, done: make(chan struct{})}
	select {
	case s.writes <- w:
	case <-s.stop:
		return 0, fmt.Errorf("postgres store: closed: %w", store.ErrUnavailable)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Once submitted, wait for the commit even if ctx ends: the caller must
	// know whether its write is durable. A write that slipped in while the
	// store closed is never taken.
	select {
	case <-w.done:
	case <-s.drained:
		select {
		case <-w.done:
		default:
			return 0, fmt.Errorf("postgres store: closed: %w", store.ErrUnavailable)
		}
	}
	return w.affected, w.err
}

func (s *Store) commitLoop() {
	defer s.stopped.Done()
	for {
		var batch []*write
		select {
		case w := <-s.writes:
			batch = append(batch, w)
		case <-s.stop:
			for {
				select {
				case w := <-s.writes:
					s.commit([]*write{w})
				default:
					return
				}
			}
		}
	more:
		for len(batch) < s.opts.MaxBatch {
			select {
			case w := <-s.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit writes a group in one transaction and one round trip. When a
// statement of the group fails on the server (the transaction is rolled
// back, nothing of it applied), each write is retried on its own so one
// failing write does not fail the others. When the connection fails,
// every write of the group fails with store.ErrUnavailable.
func (s *Store) commit(batch []*write) {
	var failed error
	start := time.Now()
	failAll := func(batch []*write, err error) {
		failed = err
		failAll(batch, err)
	}
	defer func() {
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(time.Since(start), len(batch), failed)
		}
		for _, w := range batch {
			close(w.done)
		}
	}()
	ctx, cancel := s.ctxFor(context.Background())
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		failAll(batch, fmt.Errorf("postgres store: connecting: %w", unavailable(err)))
		return
	}
	defer conn.Release()
	if len(batch) == 1 {
		// One statement commits by itself: no BEGIN/COMMIT needed.
		runAlone(ctx, conn, batch[0])
		return
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, w := range batch {
		queue(b, w)
	}
	var tag pgconn.CommandTag
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	err = conn.SendBatch(ctx, b).Close()
	if err == nil && tag.String() == "COMMIT" {
		return
	}
	if conn.Conn().IsClosed() || ctx.Err() != nil || errors.Is(unavailable(err), store.ErrUnavailable) {
		// The connection failed, or the server timed out or is shutting
		// down: retrying one by one would only wait again. Whether the
		// COMMIT reached the server is unknown only if the connection died
		// while it was on its way; the caller sees ErrUnavailable either
		// way and the gate closes.
		conn.Conn().PgConn().Close(context.Background()) //nolint:errcheck // discarding a broken session
		failAll(batch, fmt.Errorf("postgres store: group commit: %w", unavailable(orCommit(err, tag))))
		return
	}
	// A statement failed on the server: the transaction is aborted and
	// nothing of it applied. Retry each write on its own.
	if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
		failAll(batch, fmt.Errorf("postgres store: group commit: %w", unavailable(rerr)))
		return
	}
	for _, w := range batch {
		runAlone(ctx, conn, w)
	}
}

func orCommit(err error, tag pgconn.CommandTag) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("commit answered %q", tag.String())
}

// queue adds w to b, reading its result into w.
func queue(b *pgx.Batch, w *write) {
	b.Queue(w.sql, w.args...).Query(func(rows pgx.Rows) error {
		return readRows(rows, w)
	})
}

func readRows(rows pgx.Rows, w *write) error {
	if w.scan != nil {
		if err := w.scan(rows); err != nil {
			return err
		}
	} else {
		for rows.Next() {
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.affected = rows.CommandTag().RowsAffected()
	return nil
}

// runAlone runs w as its own (auto-committed) statement.
func runAlone(ctx context.Context, conn *pgxpool.Conn, w *write) {
	rows, err := conn.Query(ctx, w.sql, w.args...)
	if err == nil {
		err = readRows(rows, w)
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		w.err = fmt.Errorf("postgres store: %s: %w", w.op, unavailable(err))
	}
}

func failAll(batch []*write, err error) {
	for _, w := range batch {
		w.err = err
	}
}

// inTx runs fn in a transaction of its own (multi-step writes) and
// commits it.
func (s *Store) inTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres store: %s: begin: %w", op, unavailable(err))
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := fn(tx); err != nil {
		return unavailable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres store: %s: commit: %w", op, unavailable(err))
	}
	return nil
}

package embedded

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// writerConn is the committer's connection: every group's transaction runs
// on it, and the statements of every sale (Begin's insert, Set's update
// and event) run on it through the driver directly, prepared once and held
// here. database/sql's way (a Tx statement per Exec, its arguments
// converted and checked, the connection locked and released per call) cost
// a few µs per statement, about a third of a small write; the driver's
// statement runs in the same SQLite transaction, so nothing else changes.
// Only the committer's goroutine uses it.
type writerConn struct {
	conn  *sql.Conn
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
}

func openWriterConn(db *sql.DB) (*writerConn, error) {
	conn, err := db.Conn(context.Background())
	if err != nil {
		return nil, fmt.Errorf("taking the writer connection: %w", err)
	}
	return &writerConn{conn: conn, stmts: map[string]driver.Stmt{}}, nil
}

// close closes the held statements and gives the connection back.
func (w *writerConn) close() error {
	err := w.conn.Raw(func(any) error {
		var errs []error
		for _, s := range w.stmts {
			errs = append(errs, s.Close())
		}
		return errors.Join(errs...)
	})
	return errors.Join(err, w.conn.Close())
}

// stmt is q prepared on the driver's connection dc, once.
func (w *writerConn) stmt(dc any, q string) (driver.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("journal: the SQLite driver cannot prepare with a context")
	}
	s, err := p.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = s
	return s, nil
}

// named is args as the driver takes them (int64, string, []byte or nil
// each: what the sale's statements bind).
func (w *writerConn) named(args []any) []driver.NamedValue {
	w.args = w.args[:0]
	for i, a := range args {
		w.args = append(w.args, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return w.args
}

// exec runs write statement q inside the open transaction and returns how
// many rows it changed.
func (w *writerConn) exec(q string, args ...any) (int64, error) {
	res, err := w.result(q, args)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// insert runs INSERT statement q (one row, or none ON CONFLICT DO NOTHING)
// inside the open transaction: the new row's rowid, or inserted false when
// it wrote none. SQLite gives the rowid for free (last_insert_rowid); a
// RETURNING clause instead runs the statement through an ephemeral table
// and a result row, about a third of the insert's cost.
func (w *writerConn) insert(q string, args ...any) (id int64, inserted bool, err error) {
	res, err := w.result(q, args)
	if err != nil {
		return 0, false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, false, err
	}
	id, err = res.LastInsertId()
	return id, err == nil, err
}

// result runs write statement q inside the open transaction.
func (w *writerConn) result(q string, args []any) (res driver.Result, err error) {
	err = w.conn.Raw(func(dc any) error {
		s, err := w.stmt(dc, q)
		if err != nil {
			return err
		}
		e, ok := s.(driver.StmtExecContext)
		if !ok {
			return errors.New("journal: the SQLite driver cannot execute with a context")
		}
		res, err = e.ExecContext(context.Background(), w.named(args))
		return err
	})
	return res, err
}

package embedded

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
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
func (w *writerConn) exec(q string, args ...any) (n int64, err error) {
	err = w.conn.Raw(func(dc any) error {
		s, err := w.stmt(dc, q)
		if err != nil {
			return err
		}
		e, ok := s.(driver.StmtExecContext)
		if !ok {
			return errors.New("journal: the SQLite driver cannot execute with a context")
		}
		res, err := e.ExecContext(context.Background(), w.named(args))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// queryInt64 runs statement q inside the open transaction and reads the
// first column of its first row: found false when it returned none.
func (w *writerConn) queryInt64(q string, args ...any) (v int64, found bool, err error) {
	err = w.conn.Raw(func(dc any) error {
		s, err := w.stmt(dc, q)
		if err != nil {
			return err
		}
		qc, ok := s.(driver.StmtQueryContext)
		if !ok {
			return errors.New("journal: the SQLite driver cannot query with a context")
		}
		rows, err := qc.QueryContext(context.Background(), w.named(args))
		if err != nil {
			return err
		}
		dest := make([]driver.Value, len(rows.Columns()))
		err = rows.Next(dest)
		if errors.Is(err, io.EOF) {
			return rows.Close()
		}
		if err != nil {
			return errors.Join(err, rows.Close())
		}
		if err := rows.Close(); err != nil {
			return err
		}
		found = true
		switch x := dest[0].(type) {
		case int64:
			v = x
		default:
			return fmt.Errorf("journal: %T where an integer was expected", dest[0])
		}
		return nil
	})
	return v, found, err
}

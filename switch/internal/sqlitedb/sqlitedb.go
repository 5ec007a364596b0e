// Package sqlitedb opens the embedded SQLite files (pure Go, no server) the
// switch keeps its state in: one writer connection and a reader pool.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"modernc.org/sqlite" // pure-Go SQLite driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sync is SQLite's synchronous setting: NORMAL (fsync at checkpoints) or
// FULL (fsync at every commit: what "durable before the terminal hears it"
// needs).
type Sync string

const (
	SyncNormal Sync = "NORMAL"
	SyncFull   Sync = "FULL"
)

// readers is the size of the reader pool.
const readers = 8

// DB is one SQLite file: W is the single writer (SQLite has one), R a pool
// of readers (WAL lets them run alongside the writer).
type DB struct {
	W, R  *sql.DB
	stmts sync.Map // stmtKey -> *sql.Stmt
}

// Open opens or creates the file at path and runs schema on it. With
// prepareConn, the writer handle gets a second connection used only to
// prepare statements for TxExec/TxQueryRow (Prepare must not wait for the
// connection an open transaction holds; database/sql re-prepares each
// statement once on the writer). Stores that write outside transactions
// keep one writer connection: two would make SQLite writers wait on each
// other's locks instead of queueing.
func Open(path string, sync Sync, schema string, prepareConn bool) (*DB, error) {
	syncDataOnce.Do(syncData)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating data folder for %s: %w", path, err)
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+string(sync)+")")
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if prepareConn {
		w.SetMaxOpenConns(2)
	}
	w.SetMaxIdleConns(2)
	if _, err := w.Exec(schema); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// Every reader stays open once opened: database/sql keeps 2 idle by
	// default and would close the others after each read and open them
	// again (the file opened anew, every statement prepared again).
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	return &DB{W: w, R: r}, nil
}

// syncDataOnce makes the process's SQLite files commit with fdatasync(2).
var syncDataOnce sync.Once

// syncData makes SQLite sync a commit with fdatasync(2), as SQLite's own
// Linux builds do, instead of fsync(2), the default of the transpiled
// library: fdatasync writes the file's data and what is needed to read it
// back (its size included) but not its timestamps, so a commit is as
// durable and costs less (the WAL's fsync was most of a small group
// commit's CPU). Process-wide; where the platform has no fdatasync the
// library keeps fsync.
func syncData() {
	_, _ = sqlite.Fdatasync(true)
}

// Close closes the prepared statements and both handles.
func (d *DB) Close() error {
	d.stmts.Range(func(_, v any) bool { _ = v.(*sql.Stmt).Close(); return true })
	return errors.Join(d.W.Close(), d.R.Close())
}

// Statements are prepared once per handle and query text and reused:
// SQLite's parser is a large share of a small statement's cost.
type stmtKey struct {
	db *sql.DB
	q  string
}

func (d *DB) prep(db *sql.DB, q string) (*sql.Stmt, error) {
	k := stmtKey{db, q}
	if s, ok := d.stmts.Load(k); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.Prepare(q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := d.stmts.LoadOrStore(k, s); loaded {
		_ = s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// TxExec runs a prepared write statement inside tx.
func (d *DB) TxExec(tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	s, err := d.prep(d.W, q)
	if err != nil {
		return nil, err
	}
	return tx.Stmt(s).Exec(args...)
}

// TxQueryRow runs a prepared statement returning one row inside tx.
func (d *DB) TxQueryRow(tx *sql.Tx, q string, args ...any) *sql.Row {
	s, err := d.prep(d.W, q)
	if err != nil {
		return tx.QueryRow(q, args...) // reports the same error on Scan
	}
	return tx.Stmt(s).QueryRow(args...)
}

// QueryRow runs a prepared read on the reader pool.
func (d *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := d.prep(d.R, q)
	if err != nil {
		return d.R.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// Query runs a prepared read returning rows on the reader pool.
func (d *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := d.prep(d.R, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// WQueryRow runs a prepared statement returning one row on the writer.
func (d *DB) WQueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := d.prep(d.W, q)
	if err != nil {
		return d.W.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// TxQuery runs a prepared statement returning rows inside tx.
func (d *DB) TxQuery(tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	s, err := d.prep(d.W, q)
	if err != nil {
		return nil, err
	}
	return tx.Stmt(s).Query(args...)
}

// IsUnique reports whether err is a UNIQUE or PRIMARY KEY constraint
// violation (by SQLite's extended result code, not its message).
func IsUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

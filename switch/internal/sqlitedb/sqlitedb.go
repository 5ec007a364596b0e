// Package sqlitedb opens the embedded SQLite files (pure Go, no server) the
// switch keeps its state in: one writer connection and a reader pool.
package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite"
)

// Sync is SQLite's synchronous setting: NORMAL (fsync at checkpoints) or
// FULL (fsync at every commit: what "durable before the terminal hears it"
// needs).
type Sync string

const (
	SyncNormal Sync = "NORMAL"
	SyncFull   Sync = "FULL"
)

// DB is one SQLite file: W is the single writer (SQLite has one), R a pool
// of readers (WAL lets them run alongside the writer).
type DB struct {
	W, R *sql.DB
}

// Open opens or creates the file at path and runs schema on it.
func Open(path string, sync Sync, schema string) (*DB, error) {
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
	if _, err := w.Exec(schema); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("creating schema in %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	return &DB{W: w, R: r}, nil
}

// Close closes both handles.
func (d *DB) Close() error { return errors.Join(d.W.Close(), d.R.Close()) }

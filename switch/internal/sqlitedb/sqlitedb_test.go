package sqlitedb

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"modernc.org/sqlite"
)

// TestReadersStayOpen: concurrent reads reuse the reader pool's
// connections instead of closing and reopening them (each reopened
// connection opens the file again and re-prepares every statement: it was
// most of a duplicate look-up's cost with more than two readers at once).
func TestReadersStayOpen(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "t.db"), SyncNormal, `CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)`, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n int
				if err := db.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	if st := db.R.Stats(); st.MaxIdleClosed != 0 || st.MaxLifetimeClosed != 0 || st.MaxIdleTimeClosed != 0 {
		t.Fatalf("reader connections were closed and reopened: %+v", st)
	}
}

// TestCommitsSyncData: once a file is open, commits sync with fdatasync
// (SQLite's way on Linux), not the transpiled library's default fsync.
func TestCommitsSyncData(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "t.db"), SyncFull, `CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)`, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if runtime.GOOS == "linux" && !sqlite.FdatasyncEnabled() {
		t.Fatal("SQLite commits with fsync")
	}
	if _, err := db.W.Exec(`INSERT INTO t (k) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
}

package embedded

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
)

// useLogSchema is the use log file's: every useCountFlush a handle appends
// the device token uses it counted since the last, one row per token, as
// writer (the handle's random name), token, uses and the latest use's time
// (Unix ms). AUTOINCREMENT: an id is never given twice, even after the rows
// below it are deleted, so a fold mark (use_folds) stays true.
const useLogSchema = `
CREATE TABLE IF NOT EXISTS use_log (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	writer TEXT NOT NULL,
	token  TEXT NOT NULL,
	n      INTEGER NOT NULL,
	last   INTEGER NOT NULL
);
`

// useFoldsSchema is in the vault file: per writer, the last use log id
// whose counts are in the tokens rows, committed with them, so that a log
// row is never added twice (a crash between a fold's commit and the
// deletion of the rows it folded leaves them in the log).
const useFoldsSchema = `
CREATE TABLE IF NOT EXISTS use_folds (
	writer  TEXT PRIMARY KEY,
	through INTEGER NOT NULL
) WITHOUT ROWID;
`

const (
	appendUses = `INSERT INTO use_log (writer, token, n, last)
	SELECT ?1, value->>'t', value->>'n', value->>'l' FROM json_each(?2)`
	markFold = `INSERT INTO use_folds (writer, through) VALUES (?1, ?2)
	ON CONFLICT (writer) DO UPDATE SET through = excluded.through`
)

// useLogPath is the use log's file next to the vault's: vault.db's is
// vault-uses.db.
func useLogPath(vaultPath string) string {
	ext := filepath.Ext(vaultPath)
	return strings.TrimSuffix(vaultPath, ext) + "-uses" + ext
}

// useLog is the file a vault handle appends its device token use counts
// to (see useCounts): appending a few hundred rows at the end of a table
// writes a few pages, where adding them to the tokens rows writes one
// page per token, and leaves the vault file (and so the token reader's
// page cache, which SQLite drops whenever the file changed) alone. The
// counts reach the tokens rows in folds, far apart (useCountFold).
type useLog struct {
	db     *sqlitedb.DB
	writer string // this handle's name in the log, random
}

func openUseLog(vaultPath string, sync sqlitedb.Sync) (*useLog, error) {
	db, err := sqlitedb.Open(useLogPath(vaultPath), sync, useLogSchema, false)
	if err != nil {
		return nil, fmt.Errorf("vault use log: %w", err)
	}
	var name [8]byte
	if _, err := rand.Read(name[:]); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("vault use log: naming the writer: %w", err)
	}
	return &useLog{db: db, writer: hex.EncodeToString(name[:])}, nil
}

func (l *useLog) close() error { return l.db.Close() }

// append writes counts as this writer's rows and returns the last row's
// id: every row of this writer up to it is an append that returned.
func (l *useLog) append(counts []countedUses) (through int64, err error) {
	arg, err := json.Marshal(counts)
	if err != nil {
		return 0, err
	}
	res, err := l.db.W.Exec(appendUses, l.writer, string(arg))
	if err != nil {
		return 0, fmt.Errorf("vault use log: appending %d tokens' uses: %w", len(counts), err)
	}
	return res.LastInsertId()
}

// trim deletes writer's rows up to through, folded.
func (l *useLog) trim(writer string, through int64) error {
	if _, err := l.db.W.Exec(`DELETE FROM use_log WHERE id <= ?1 AND writer = ?2`, through, writer); err != nil {
		return fmt.Errorf("vault use log: deleting folded rows: %w", err)
	}
	return nil
}

// foldCounts adds counts (sorted by token, so that the update walks the
// tokens table in order) to the tokens rows and marks writer's log folded
// through id, in one transaction of the vault's writer. locked runs after
// the statements and around the commit (the caller's lock and what must
// happen with the commit); the commit's error is returned.
func (s *vault) foldCounts(counts []countedUses, writer string, through int64, locked func(commit func() error) error) error {
	sort.Slice(counts, func(i, j int) bool { return counts[i].Token < counts[j].Token })
	arg, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.addStmt).ExecContext(ctx, string(arg)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, markFold, writer, through); err != nil {
		_ = tx.Rollback()
		return err
	}
	return locked(tx.Commit)
}

// recoverUseLog folds what writers no longer open left in the log (a
// process that ended without closing the vault, or a close whose fold
// failed): the rows past each one's fold mark, then deletes them and the
// mark. live are the writers open on this vault in this process, left to
// fold their own. Run at open, before the handle counts any use.
func (s *vault) recoverUseLog(live map[string]bool) error {
	writers, err := logWriters(s.countLog.db.W)
	if err != nil {
		return err
	}
	for _, w := range writers {
		if live[w] {
			continue
		}
		var mark int64
		err := s.w.QueryRow(`SELECT through FROM use_folds WHERE writer = ?`, w).Scan(&mark)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("vault: reading the use log's fold mark: %w", err)
		}
		counts, through, err := unfolded(s.countLog.db.W, w, mark)
		if err != nil {
			return err
		}
		if len(counts) > 0 {
			if err := s.foldCounts(counts, w, through, func(commit func() error) error { return commit() }); err != nil {
				return fmt.Errorf("vault: folding %d tokens' logged uses: %w", len(counts), err)
			}
		}
		if err := s.countLog.trim(w, max(through, mark)); err != nil {
			return err
		}
	}
	// Marks of writers gone with no rows left: nothing more to guard.
	stale, err := s.w.Query(`SELECT writer FROM use_folds`)
	if err != nil {
		return fmt.Errorf("vault: reading the use log's fold marks: %w", err)
	}
	var gone []string
	for stale.Next() {
		var w string
		if err := stale.Scan(&w); err != nil {
			_ = stale.Close()
			return fmt.Errorf("vault: reading the use log's fold marks: %w", err)
		}
		if !live[w] {
			gone = append(gone, w)
		}
	}
	if err := errors.Join(stale.Err(), stale.Close()); err != nil {
		return fmt.Errorf("vault: reading the use log's fold marks: %w", err)
	}
	for _, w := range gone {
		var left int
		if err := s.countLog.db.W.QueryRow(`SELECT count(*) FROM use_log WHERE writer = ?`, w).Scan(&left); err != nil {
			return fmt.Errorf("vault use log: %w", err)
		}
		if left > 0 {
			continue
		}
		if _, err := s.w.Exec(`DELETE FROM use_folds WHERE writer = ?`, w); err != nil {
			return fmt.Errorf("vault: deleting a fold mark: %w", err)
		}
	}
	return nil
}

// logWriters are the writers with rows in the log.
func logWriters(db *sql.DB) ([]string, error) {
	rows, err := db.Query(`SELECT DISTINCT writer FROM use_log`)
	if err != nil {
		return nil, fmt.Errorf("vault use log: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			return nil, fmt.Errorf("vault use log: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vault use log: %w", err)
	}
	return out, nil
}

// unfolded sums writer's rows past mark per token; through is the last
// such row's id (mark when there is none).
func unfolded(db *sql.DB, writer string, mark int64) (counts []countedUses, through int64, err error) {
	rows, err := db.Query(`SELECT token, sum(n), max(last), max(id) FROM use_log
		WHERE writer = ?1 AND id > ?2 GROUP BY token`, writer, mark)
	if err != nil {
		return nil, 0, fmt.Errorf("vault use log: %w", err)
	}
	defer rows.Close()
	through = mark
	for rows.Next() {
		var c countedUses
		var id int64
		if err := rows.Scan(&c.Token, &c.N, &c.Last, &id); err != nil {
			return nil, 0, fmt.Errorf("vault use log: %w", err)
		}
		counts = append(counts, c)
		through = max(through, id)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("vault use log: %w", err)
	}
	return counts, through, nil
}

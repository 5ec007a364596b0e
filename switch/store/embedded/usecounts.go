package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// useCountsSchema is the use counts file's: per device token, the uses
// counted since the file exists and the latest one's time (Unix ms). A
// token's use count is its tokens row's (the uses counted before, and a
// one-time number's, which its conditional update counts) plus this one's.
// The rows are a few dozen bytes, where a tokens row is a few hundred, and
// the vault file is left alone: its every commit would drop the token
// reader's page cache of the whole file (a connection's cache goes
// whenever a file changed since its last read), and a flush into the
// tokens rows wrote a page per token (docs/performance.md).
const useCountsSchema = `
CREATE TABLE IF NOT EXISTS use_counts (
	token TEXT PRIMARY KEY,
	n     INTEGER NOT NULL,
	last  INTEGER NOT NULL
) WITHOUT ROWID;
`

// addUses adds the counted uses of many tokens in one statement: ?1 is a
// JSON array of {"t": token, "n": uses, "l": latest use in Unix ms}, in
// token order (the b-tree is then walked in order). "WHERE true" lets
// SQLite parse the upsert after a SELECT.
const addUses = `INSERT INTO use_counts (token, n, last)
	SELECT value->>'t', value->>'n', value->>'l' FROM json_each(?1) WHERE true
	ON CONFLICT (token) DO UPDATE SET n = n + excluded.n, last = max(last, excluded.last)`

// useCountsPath is the use counts file next to the vault's: vault.db's is
// vault-uses.db.
func useCountsPath(vaultPath string) string {
	ext := filepath.Ext(vaultPath)
	return strings.TrimSuffix(vaultPath, ext) + "-uses" + ext
}

// openUseCounts opens (or creates) the use counts file next to the vault
// at vaultPath, synced as the vault is.
func openUseCounts(vaultPath string, sync sqlitedb.Sync) (*sqlitedb.DB, error) {
	db, err := sqlitedb.Open(useCountsPath(vaultPath), sync, useCountsSchema, false)
	if err != nil {
		return nil, fmt.Errorf("vault use counts: %w", err)
	}
	return db, nil
}

// countedUseCount and countedUpdatedAt are a token's use count and update
// time read from its tokens row (as t) with its row in the use counts file
// (attached as uses, as u; none when the token has no uses there): the
// count is the sum, the update time the later.
const (
	countedUseCount  = "t.use_count + coalesce(u.n, 0)"
	countedUpdatedAt = "max(t.updated_at, coalesce(u.last, 0))"
)

// countedColumns are sqlstore.TokenColumns read from tokens (as t) with
// the use counts (countedUseCount, countedUpdatedAt).
var countedColumns = func() string {
	cols := strings.Split(sqlstore.TokenColumns, ",")
	for i, c := range cols {
		switch c = strings.TrimSpace(c); c {
		case "use_count":
			cols[i] = countedUseCount
		case "updated_at":
			cols[i] = countedUpdatedAt
		default:
			cols[i] = "t." + c
		}
	}
	return strings.Join(cols, ", ")
}()

// countedFrom is the tokens table with each row's use counts.
const countedFrom = ` FROM tokens t LEFT JOIN uses.use_counts u ON u.token = t.token`

// storedUses are token's uses in the use counts file (none when it has no
// row) and the latest one's time.
func (s *vault) storedUses(ctx context.Context, token string) (pendingUses, error) {
	var p pendingUses
	err := s.countsDB.QueryRow(ctx, `SELECT n, last FROM use_counts WHERE token = ?`, token).Scan(&p.n, &p.last)
	if errors.Is(err, sql.ErrNoRows) {
		return pendingUses{}, nil
	}
	if err != nil {
		return pendingUses{}, fmt.Errorf("vault: reading use counts: %w", err)
	}
	return p, nil
}

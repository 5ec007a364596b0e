package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kbpay/switch/switch/store"
)

// ReserveBlock durably reserves n numbers of the named sequence and
// returns the first; the block is [first, first+n). Numbers start at 1.
// A block reserved and then not used (a restart) is skipped, never reused.
func (j *journal) ReserveBlock(ctx context.Context, name string, n int64) (int64, error) {
	if n <= 0 {
		return 0, errors.New("journal: reserving an empty block")
	}
	var first int64
	err := j.exec(ctx, store.OpSequence, func(tx *sql.Tx) error {
		if _, err := j.db.TxExec(tx, `INSERT INTO sequences (name, next) VALUES (?, 1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return err
		}
		return j.db.TxQueryRow(tx, `UPDATE sequences SET next = next + ? WHERE name = ? RETURNING next - ?`, n, name, n).Scan(&first)
	})
	if err != nil {
		return 0, fmt.Errorf("journal: reserving %d numbers of sequence %s: %w", n, name, err)
	}
	return first, nil
}

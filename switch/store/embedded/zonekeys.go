package embedded

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// zoneKeySchema keeps issuer key changes (store.ZoneKeys); one instance
// has the file, so they are recorded for the record only.
const zoneKeySchema = `
CREATE TABLE IF NOT EXISTS zone_keys (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	route       TEXT NOT NULL,
	key_label   TEXT NOT NULL,
	zmk_label   TEXT NOT NULL,
	version     INTEGER NOT NULL,
	wrapped     TEXT NOT NULL,
	kcv         TEXT NOT NULL,
	instance    TEXT NOT NULL,
	recorded_at INTEGER NOT NULL
);
`

// zoneKeys is the journal's store.ZoneKeys.
type zoneKeys struct{ j *journal }

// Record appends an issuer key change.
func (z zoneKeys) Record(ctx context.Context, k store.ZoneKey) error {
	err := z.j.exec1(ctx, store.OpZoneKey, func(tx *sql.Tx) error {
		_, err := z.j.db.TxExec(tx, sqlstore.RecordZoneKeyQuery, sqlstore.ZoneKeyArgs(k)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("journal: recording the key change of route %s: %w", k.Route, err)
	}
	return nil
}

// Latest reads route's last key change.
func (z zoneKeys) Latest(ctx context.Context, route string) (store.ZoneKey, error) {
	out, err := all(ctx, z.j.db, sqlstore.ScanZoneKey, sqlstore.LatestZoneKeyQuery, route)
	if err != nil {
		return store.ZoneKey{}, fmt.Errorf("journal: reading the key changes of route %s: %w", route, err)
	}
	if len(out) == 0 {
		return store.ZoneKey{}, fmt.Errorf("journal: key changes of route %s: %w", route, store.ErrNotFound)
	}
	return out[0], nil
}

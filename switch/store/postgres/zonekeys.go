package postgres

import (
	"context"
	"fmt"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

var (
	recordZoneKeyQuery = pg.Bind(sqlstore.RecordZoneKeyQuery)
	latestZoneKeyQuery = pg.Bind(sqlstore.LatestZoneKeyQuery)
)

// zoneKeys is the store's store.ZoneKeys.
type zoneKeys struct{ s *Store }

// Record appends an issuer key change.
func (z zoneKeys) Record(ctx context.Context, k store.ZoneKey) error {
	if _, err := z.s.exec(ctx, store.OpZoneKey, recordZoneKeyQuery, nil, sqlstore.ZoneKeyArgs(k)...); err != nil {
		return fmt.Errorf("journal: recording the key change of route %s: %w", k.Route, err)
	}
	return nil
}

// Latest reads route's last key change.
func (z zoneKeys) Latest(ctx context.Context, route string) (store.ZoneKey, error) {
	ctx, cancel := z.s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, z.s.pool, sqlstore.ScanZoneKey, latestZoneKeyQuery, route)
	if err != nil {
		return store.ZoneKey{}, fmt.Errorf("journal: reading the key changes of route %s: %w", route, err)
	}
	if len(out) == 0 {
		return store.ZoneKey{}, fmt.Errorf("journal: key changes of route %s: %w", route, store.ErrNotFound)
	}
	return out[0], nil
}

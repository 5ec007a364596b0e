package sqlstore

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// The zone key records (store.ZoneKeys): the key under the ZMK and its
// KCV are kept as hex, the key never clear.

// RecordZoneKeyQuery appends a key change. Arguments: route, key_label,
// zmk_label, version, wrapped (hex), kcv (hex), instance, recorded_at
// (Unix ms).
const RecordZoneKeyQuery = `INSERT INTO zone_keys (route, key_label, zmk_label, version, wrapped, kcv, instance, recorded_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// LatestZoneKeyQuery reads a route's last key change. Argument: route.
const LatestZoneKeyQuery = `SELECT id, route, key_label, zmk_label, version, wrapped, kcv, instance, recorded_at
	FROM zone_keys WHERE route = ? ORDER BY id DESC LIMIT 1`

// ZoneKeyArgs are RecordZoneKeyQuery's arguments for k.
func ZoneKeyArgs(k store.ZoneKey) []any {
	return []any{k.Route, k.Label, k.ZMK, k.Version, hex.EncodeToString(k.Wrapped), hex.EncodeToString(k.KCV),
		k.Instance, k.At.UnixMilli()}
}

// ScanZoneKey reads a row of LatestZoneKeyQuery.
func ScanZoneKey(row Row) (store.ZoneKey, error) {
	var k store.ZoneKey
	var wrapped, kcv string
	var at int64
	if err := row.Scan(&k.ID, &k.Route, &k.Label, &k.ZMK, &k.Version, &wrapped, &kcv, &k.Instance, &at); err != nil {
		return store.ZoneKey{}, fmt.Errorf("journal: reading a zone key record: %w", err)
	}
	var err error
	if k.Wrapped, err = hex.DecodeString(wrapped); err != nil {
		return store.ZoneKey{}, fmt.Errorf("journal: zone key record %d: wrapped key: %w", k.ID, err)
	}
	if k.KCV, err = hex.DecodeString(kcv); err != nil {
		return store.ZoneKey{}, fmt.Errorf("journal: zone key record %d: KCV: %w", k.ID, err)
	}
	k.At = time.UnixMilli(at)
	return k, nil
}

package sqlstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// Row is one result row: *sql.Row, *sql.Rows, pgx.Row and pgx.Rows all
// are.
type Row interface {
	Scan(dest ...any) error
}

// Rows are a result's rows (*sql.Rows, pgx.Rows); the caller closes them.
type Rows interface {
	Row
	Next() bool
	Err() error
}

// All reads every row of rows with scan. Errors of reading the rows
// (rows.Err) come back as they are, for the backend to map; the caller
// closes rows.
func All[T any](rows Rows, scan func(Row) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// One reads the first row of rows with scan: store.ErrNotFound when there
// is none. The caller closes rows.
func One[T any](rows Rows, scan func(Row) (T, error)) (T, error) {
	var zero T
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return zero, err
		}
		return zero, store.ErrNotFound
	}
	return scan(rows)
}

// ScanTxn reads a row of TxnColumns.
func ScanTxn(row Row) (store.Txn, error) {
	var t store.Txn
	var state string
	var created, updated int64
	err := row.Scan(&t.ID, &t.TerminalID, &t.STAN, &t.TxTime, &t.MTI, &t.Listener, &t.MerchantID, &t.ProcCode, &t.Amount,
		&t.Currency, &t.MaskedPAN, &t.Token, &t.PANKey, &t.PANKeyVersion, &t.PANCiphertext, &t.CardExpiry, &t.Route,
		&t.IssuerSTAN, &t.IssuerTxTime, &t.RRN, &t.ApprovalCode, &t.RC, &state, &t.Remaining, &t.OriginalID, &created, &updated,
		&t.AuthKey, &t.ContentHash, &t.Owner)
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reading transaction: %w", err)
	}
	t.State = store.State(state)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return t, nil
}

// ScanSAF reads a row of SAFColumns.
func ScanSAF(row Row) (store.SAFItem, error) {
	var it store.SAFItem
	var next, exp, created, lease int64
	if err := row.Scan(&it.ID, &it.TxnID, &it.Route, &it.Kind, &it.Amount, &it.Attempts, &next, &exp, &it.State,
		&it.LastError, &it.STAN, &it.TxTime, &created, &it.Owner, &lease); err != nil {
		return store.SAFItem{}, fmt.Errorf("journal: reading SAF item: %w", err)
	}
	it.NextAt, it.ExpiresAt, it.CreatedAt = time.UnixMilli(next), time.UnixMilli(exp), time.UnixMilli(created)
	it.LeaseUntil = time.UnixMilli(lease)
	return it, nil
}

// ScanToken reads a row of TokenColumns and refuses a record no vault
// writes (unknown status or kind, no ciphertext).
func ScanToken(row Row) (store.TokenRecord, error) {
	var rec store.TokenRecord
	var status, kind, domain string
	var expires, created, updated int64
	if err := row.Scan(&rec.Token, &rec.PANKey, &rec.PANKeyVersion, &rec.PANCiphertext, &rec.PANHash, &rec.HashVersion,
		&rec.MaskedPAN, &rec.CardExpiry, &expires, &status, &kind, &domain, &rec.UseCount, &rec.MaxUses, &created, &updated); err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: reading token record: %w", err)
	}
	// "{}" (no restriction, most tokens) is the zero Domain: no decoding.
	if domain != "{}" {
		if err := json.Unmarshal([]byte(domain), &rec.Domain); err != nil {
			return store.TokenRecord{}, fmt.Errorf("vault: token record has a malformed domain: %w", err)
		}
	}
	rec.Status, rec.Kind = store.TokenStatus(status), store.TokenKind(kind)
	switch {
	case rec.Status != store.TokenActive && rec.Status != store.TokenSuspended && rec.Status != store.TokenDeleted:
		return store.TokenRecord{}, fmt.Errorf("vault: token record has unknown status %q", status)
	case rec.Kind != store.DeviceToken && rec.Kind != store.OneTimeToken:
		return store.TokenRecord{}, fmt.Errorf("vault: token record has unknown kind %q", kind)
	case len(rec.PANCiphertext) == 0:
		return store.TokenRecord{}, errors.New("vault: token record has no PAN ciphertext")
	}
	rec.ExpiresAt, rec.CreatedAt, rec.UpdatedAt = time.UnixMilli(expires), time.UnixMilli(created), time.UnixMilli(updated)
	return rec, nil
}

// TokenArgs are rec's values in the order of TokenColumns.
func TokenArgs(rec store.TokenRecord) ([]any, error) {
	domain, err := json.Marshal(rec.Domain)
	if err != nil {
		return nil, fmt.Errorf("vault: encoding domain: %w", err)
	}
	return []any{rec.Token, rec.PANKey, rec.PANKeyVersion, rec.PANCiphertext, rec.PANHash, rec.HashVersion, rec.MaskedPAN,
		rec.CardExpiry, rec.ExpiresAt.UnixMilli(), string(rec.Status), string(rec.Kind), string(domain),
		rec.UseCount, rec.MaxUses, rec.CreatedAt.UnixMilli(), rec.UpdatedAt.UnixMilli()}, nil
}

// ScanEventLine reads a row of (kind, detail) as "kind: detail"
// (Lookup.Events).
func ScanEventLine(row Row) (string, error) {
	var k, d string
	if err := row.Scan(&k, &d); err != nil {
		return "", fmt.Errorf("journal: reading event: %w", err)
	}
	return k + ": " + d, nil
}

// ScanEvent reads a row of (at, kind, detail) (Lookup.History).
func ScanEvent(row Row) (store.Event, error) {
	var e store.Event
	var at int64
	if err := row.Scan(&at, &e.Kind, &e.Detail); err != nil {
		return store.Event{}, fmt.Errorf("journal: reading event: %w", err)
	}
	e.At = time.UnixMilli(at)
	return e, nil
}

// ScanPeer reads a row of (name, lease_until) (Instances.Lapsed).
func ScanPeer(row Row) (store.Peer, error) {
	var p store.Peer
	var until int64
	if err := row.Scan(&p.Name, &until); err != nil {
		return store.Peer{}, fmt.Errorf("journal: reading instance: %w", err)
	}
	p.LeaseUntil = time.UnixMilli(until)
	return p, nil
}

// SAFCounts reads rows of (state, count) into a count per state, every
// state of store.SAFStates present (zero included).
func SAFCounts(rows Rows) (map[string]int, error) {
	out := make(map[string]int, len(store.SAFStates))
	for _, s := range store.SAFStates {
		out[s] = 0
	}
	if err := keyed(rows, out); err != nil {
		return nil, fmt.Errorf("journal: counting SAF items: %w", err)
	}
	return out, nil
}

// ClosedBatches reads rows of (currency, last agreed 0500's id) into the
// map OpenBatches renders.
func ClosedBatches(rows Rows) (map[string]int64, error) {
	closed := map[string]int64{}
	if err := keyed(rows, closed); err != nil {
		return nil, fmt.Errorf("journal: finding the last reconciliations: %w", err)
	}
	return closed, nil
}

// Totals folds a terminal's open batches (the rows of OpenBatches) by
// currency (store.CurrencyTotals.Add).
func Totals(txns []store.Txn) store.CurrencyTotals {
	totals := store.CurrencyTotals{}
	for _, t := range txns {
		totals.Add(t)
	}
	return totals
}

// keyed reads rows of (key, value) into m.
func keyed[V int | int64](rows Rows, m map[string]V) error {
	for rows.Next() {
		var k string
		var v V
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		m[k] = v
	}
	return rows.Err()
}

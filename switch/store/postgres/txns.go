package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const txnColumns = sqlstore.TxnColumns

const insertColumns = sqlstore.TxnInsertList

const insertTxn = `INSERT INTO txns (` + insertColumns + `)
	VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29)`

// insertCasts are insertTxn's values typed, for an INSERT ... SELECT
// (where the columns do not type the parameters).
const insertCasts = `$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::bigint,
	$9::text, $10::text, $11::text, $12::text, $13::integer, $14::bytea, $15::text, $16::text, $17::text, $18::text,
	$19::text, $20::text, $21::text, $22::text, $23::bigint, $24::bigint, $25::bigint, $26::bigint, $27::text, $28::text, $29::text`

// insertArgs are t's values for insertTxn, stamped now and owned by this
// instance.
func (s *Store) insertArgs(t *store.Txn) []any {
	now := s.now()
	t.CreatedAt, t.UpdatedAt, t.Owner = time.UnixMilli(now.UnixMilli()), time.UnixMilli(now.UnixMilli()), s.inst.Name
	var ct any
	if t.PANCiphertext != nil {
		ct = t.PANCiphertext
	}
	return []any{t.TerminalID, t.STAN, t.TxTime, t.MTI, t.Listener, t.MerchantID, t.ProcCode, t.Amount, t.Currency,
		t.MaskedPAN, t.Token, t.PANKey, t.PANKeyVersion, ct, t.CardExpiry, t.Route, t.IssuerSTAN,
		t.IssuerTxTime, t.RRN, t.ApprovalCode, t.RC, string(t.State), t.Remaining, t.OriginalID,
		now.UnixMilli(), now.UnixMilli(), t.AuthKey, t.ContentHash, t.Owner}
}

// Begin records a new request (one statement in the group commit). A key
// recorded already touches nothing and returns store.ErrDuplicate with
// the stored row.
func (s *Store) Begin(ctx context.Context, t store.Txn) (store.Txn, error) {
	n, err := s.exec(ctx, store.OpBegin, insertTxn+` ON CONFLICT ON CONSTRAINT txns_key DO NOTHING RETURNING id`,
		scanOne(&t.ID), s.insertArgs(&t)...)
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: recording request: %w", err)
	}
	if n == 0 {
		return s.duplicateOf(ctx, t.Key)
	}
	return t, nil
}

// scanOne scans the single column of the result's rows into dst.
func scanOne(dst any) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(dst); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// duplicateOf returns the stored row of key k with store.ErrDuplicate.
func (s *Store) duplicateOf(ctx context.Context, k store.Key) (store.Txn, error) {
	return sqlstore.Duplicate(s.FindByKey(ctx, k))
}

// Set records an update durably, with its event, in one statement of the
// group commit; only while this instance owns the row.
func (s *Store) Set(ctx context.Context, id int64, u store.Update, event string) error {
	now := s.msNow()
	var rem, ct any
	if u.Remaining != nil {
		rem = *u.Remaining
	}
	if u.PANCiphertext != nil {
		ct = u.PANCiphertext
	}
	var updated int64
	_, err := s.exec(ctx, store.OpSet, `WITH u AS (UPDATE txns SET state = $1, updated_at = $2,
			route = CASE WHEN $3::text <> '' THEN $3 ELSE route END,
			issuer_stan = CASE WHEN $4::text <> '' THEN $4 ELSE issuer_stan END,
			issuer_tx_time = CASE WHEN $5::text <> '' THEN $5 ELSE issuer_tx_time END,
			rrn = CASE WHEN $6::text <> '' THEN $6 ELSE rrn END,
			approval_code = CASE WHEN $7::text <> '' THEN $7 ELSE approval_code END,
			rc = CASE WHEN $8::text <> '' THEN $8 ELSE rc END,
			masked_pan = CASE WHEN $9::text <> '' THEN $9 ELSE masked_pan END,
			token = CASE WHEN $10::text <> '' THEN $10 ELSE token END,
			card_expiry = CASE WHEN $11::text <> '' THEN $11 ELSE card_expiry END,
			pan_key = CASE WHEN $12::text <> '' THEN $12 ELSE pan_key END,
			pan_key_version = CASE WHEN $12::text <> '' THEN $13::integer ELSE pan_key_version END,
			pan_ct = COALESCE($14::bytea, pan_ct),
			remaining = COALESCE($15::bigint, remaining)
			WHERE id = $16 AND owner IN ($17, '') RETURNING id),
		e AS (INSERT INTO events (txn_id, at, kind, detail) SELECT id, $2, $1, $18 FROM u WHERE $18::text <> '')
		SELECT count(*) FROM u`, scanOne(&updated),
		string(u.State), now, u.Route, u.IssuerSTAN, u.IssuerTxT, u.RRN, u.ApprovalCode, u.RC, u.MaskedPAN, u.Token,
		u.CardExpiry, u.PANKey, u.PANKeyVersion, ct, rem, id, s.inst.Name, event)
	if err == nil && updated != 1 {
		err = s.notOwned(ctx, id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("journal: updating transaction %d: %w", id, err)
	}
	return nil
}

// notOwned tells why an owner-checked write to row id touched nothing
// (sqlstore.NotOwned).
func (s *Store) notOwned(ctx context.Context, id int64, otherwise error) error {
	var owner string
	err := s.pool.QueryRow(ctx, `SELECT owner FROM txns WHERE id = $1`, id).Scan(&owner)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return unavailable(err)
	}
	return sqlstore.NotOwned(id, owner, err == nil, s.inst.Name, otherwise)
}

const insertEvent = `INSERT INTO events (txn_id, at, kind, detail) VALUES ($1, $2, $3, $4)`

// Event appends a note to a transaction's history.
func (s *Store) Event(ctx context.Context, id int64, kind, detail string) error {
	if _, err := s.exec(ctx, store.OpEvent, insertEvent, nil, id, s.msNow(), kind, detail); err != nil {
		return fmt.Errorf("journal: event of transaction %d: %w", id, err)
	}
	return nil
}

// Probe makes one small durable write (an event of transaction 0).
func (s *Store) Probe(ctx context.Context, why string) error {
	if _, err := s.exec(ctx, store.OpProbe, insertEvent, nil, int64(0), s.msNow(), "journal_probe", why); err != nil {
		return fmt.Errorf("journal: probe: %w", err)
	}
	return nil
}

// Get reads one transaction.
func (s *Store) Get(ctx context.Context, id int64) (store.Txn, error) {
	return s.one(ctx, `SELECT `+txnColumns+` FROM txns WHERE id = $1`, id)
}

// FindByKey finds a request by terminal ID, STAN, DE 7 and MTI.
func (s *Store) FindByKey(ctx context.Context, k store.Key) (store.Txn, error) {
	return s.one(ctx, `SELECT `+txnColumns+` FROM txns WHERE terminal_id = $1 AND stan = $2 AND tx_time = $3 AND mti = $4`,
		k.TerminalID, k.STAN, k.TxTime, k.MTI)
}

// FindOriginal finds the sale or authorisation a cancel names, within s.
func (s *Store) FindOriginal(ctx context.Context, sc store.Scope, mti, stan, txTime string) (store.Txn, error) {
	return s.one(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE terminal_id = $1 AND stan = $2 AND tx_time = $3 AND mti = $4 AND original_id = 0
		AND listener = $5 AND merchant_id = $6 AND auth_key = $7`,
		sc.TerminalID, stan, txTime, mti, sc.Listener, sc.MerchantID, sc.AuthKey)
}

// FindSale finds the approved sale with this RRN and approval code within
// sc: store.ErrNotFound, or store.ErrAmbiguous when several match.
func (s *Store) FindSale(ctx context.Context, sc store.Scope, rrn, approvalCode string) (store.Txn, error) {
	found, err := s.many(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE rrn = $1 AND approval_code = $2 AND state = 'approved' AND original_id = 0
		AND listener = $3 AND terminal_id = $4 AND merchant_id = $5 AND auth_key = $6 ORDER BY id LIMIT 2`,
		rrn, approvalCode, sc.Listener, sc.TerminalID, sc.MerchantID, sc.AuthKey)
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: finding a sale by RRN: %w", err)
	}
	return sqlstore.OneSale(found)
}

// FindByIssuerSTAN finds the latest transaction sent on route with stan.
func (s *Store) FindByIssuerSTAN(ctx context.Context, route, stan string) (store.Txn, error) {
	return s.one(ctx, `SELECT `+txnColumns+` FROM txns WHERE route = $1 AND issuer_stan = $2 ORDER BY id DESC LIMIT 1`, route, stan)
}

// InState lists every instance's transactions in state st.
func (s *Store) InState(ctx context.Context, st store.State) ([]store.Txn, error) {
	return s.many(ctx, `SELECT `+txnColumns+` FROM txns WHERE state = $1 ORDER BY id`, string(st))
}

// InFlight lists this instance's forwarded transactions and those of
// owner "".
func (s *Store) InFlight(ctx context.Context) ([]store.Txn, error) {
	return s.many(ctx, `SELECT `+txnColumns+` FROM txns WHERE state = 'forwarded' AND owner IN ($1, '') ORDER BY id`, s.inst.Name)
}

// Between lists transactions created in [from, to).
func (s *Store) Between(ctx context.Context, from, to time.Time) ([]store.Txn, error) {
	return s.many(ctx, `SELECT `+txnColumns+` FROM txns WHERE created_at >= $1 AND created_at < $2 ORDER BY id`,
		from.UnixMilli(), to.UnixMilli())
}

// Reconciliations lists 0500 rows answered rc, newest first.
func (s *Store) Reconciliations(ctx context.Context, rc string, limit int) ([]store.Txn, error) {
	return s.many(ctx, `SELECT `+txnColumns+` FROM txns WHERE mti = '0500' AND rc = $1 ORDER BY id DESC LIMIT $2`, rc, limit)
}

// TerminalTotals are terminalID's open batches, one per currency, folded
// by store.CurrencyTotals.Add.
func (s *Store) TerminalTotals(ctx context.Context, terminalID string) (store.CurrencyTotals, error) {
	rows, err := s.pool.Query(ctx, `SELECT currency, MAX(id) FROM txns WHERE terminal_id = $1 AND mti = '0500' AND rc = '00'
		GROUP BY currency`, terminalID)
	if err != nil {
		return nil, fmt.Errorf("journal: finding the last reconciliations: %w", unavailable(err))
	}
	closed, err := sqlstore.ClosedBatches(rows)
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("journal: finding the last reconciliations: %w", unavailable(err))
	}
	q, args := pg.OpenBatches(terminalID, closed)
	txns, err := s.many(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: listing terminal %s's open batches: %w", terminalID, err)
	}
	return sqlstore.Totals(txns), nil
}

func (s *Store) one(ctx context.Context, sql string, args ...any) (store.Txn, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reading transaction: %w", unavailable(err))
	}
	defer rows.Close()
	t, err := sqlstore.One(rows, sqlstore.ScanTxn)
	return t, unavailable(err)
}

func (s *Store) many(ctx context.Context, sql string, args ...any) ([]store.Txn, error) {
	ctx, cancel := s.ctxFor(ctx)
	defer cancel()
	out, err := all(ctx, s.pool, sqlstore.ScanTxn, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: listing transactions: %w", err)
	}
	return out, nil
}

// all reads every row q selects with scan; a failure to reach the
// database is store.ErrUnavailable.
func all[T any](ctx context.Context, q querier, scan func(sqlstore.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out, err := sqlstore.All(rows, scan)
	return out, unavailable(err)
}

// querier is the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/internal/sqlitedb"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

const txnColumns = sqlstore.TxnColumns

// Begin records a new request. A request whose store.Key is already journaled
// returns store.ErrDuplicate with the stored row, so the caller can answer the
// duplicate from it instead of charging twice: the unique key decides, no
// look-up comes first, and of requests racing with one key exactly one is
// recorded.
func (j *journal) Begin(ctx context.Context, t store.Txn) (store.Txn, error) {
	err := j.exec1(ctx, store.OpBegin, func(tx *sql.Tx) error { return j.insert(tx, &t) })
	if errors.Is(err, errKeyTaken) || sqlitedb.IsUnique(err) {
		return j.duplicateOf(ctx, t.Key)
	}
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: recording request: %w", err)
	}
	return t, nil
}

// errKeyTaken: insert found its key journaled already and wrote nothing.
var errKeyTaken = errors.New("journal: key journaled already")

// insert adds t as a new row (one statement, inside tx on the committer's
// connection, through the driver) and sets its ID and times; errKeyTaken,
// with nothing written, when t's key is journaled already.
func (j *journal) insert(_ *sql.Tx, t *store.Txn) error {
	now := j.now()
	t.CreatedAt, t.UpdatedAt, t.Owner = now, now, j.inst.Name
	j.stamp(now.UnixMilli())
	q, args := insertStatement(t)
	id, found, err := j.w.insert(q, args...)
	if err != nil {
		return err
	}
	if !found {
		return errKeyTaken
	}
	t.ID = id
	return nil
}

// duplicateOf returns the stored row of key k with store.ErrDuplicate.
func (j *journal) duplicateOf(ctx context.Context, k store.Key) (store.Txn, error) {
	return sqlstore.Duplicate(j.FindByKey(ctx, k))
}

// Set records an update durably (returns after the group commit). Its
// event is the row's first event when the row has none yet (one
// statement), else an events row after the update.
func (j *journal) Set(ctx context.Context, id int64, u store.Update, event string) error {
	now := j.now().UnixMilli()
	q, args := setStatement(u, now, id, j.inst.Name, event)
	err := j.execChecked(ctx, store.OpSet, func(tx *sql.Tx) error {
		n, err := j.w.exec(q, args...)
		if err != nil || n == 1 {
			return err
		}
		if event == "" {
			return j.notOwned(tx, id, store.ErrNotFound)
		}
		// Not owned, not found, or the row has its first event already.
		q, args := setStatement(u, now, id, j.inst.Name, "")
		if n, err = j.w.exec(q, args...); err != nil {
			return err
		}
		if n != 1 {
			return j.notOwned(tx, id, store.ErrNotFound)
		}
		return j.event(tx, id, now, string(u.State), event)
	})
	if err != nil {
		return fmt.Errorf("journal: updating transaction %d: %w", id, err)
	}
	return nil
}

// notOwned tells why an owner-checked write to row id touched nothing
// (sqlstore.NotOwned).
func (j *journal) notOwned(tx *sql.Tx, id int64, otherwise error) error {
	var owner string
	err := j.db.TxQueryRow(tx, `SELECT owner FROM txns WHERE id = ?`, id).Scan(&owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return sqlstore.NotOwned(id, owner, err == nil, j.inst.Name, otherwise)
}

// Event appends a note to a transaction's history.
func (j *journal) Event(ctx context.Context, id int64, kind, detail string) error {
	return j.exec1(ctx, store.OpEvent, func(tx *sql.Tx) error {
		return j.event(tx, id, j.now().UnixMilli(), kind, detail)
	})
}

// Get reads one transaction.
func (j *journal) Get(ctx context.Context, id int64) (store.Txn, error) {
	return j.one(ctx, `SELECT `+txnColumns+` FROM txns WHERE id = ?`, id)
}

// FindByKey finds a request by terminal ID, STAN, DE 7 and MTI.
func (j *journal) FindByKey(ctx context.Context, k store.Key) (store.Txn, error) {
	return j.one(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE terminal_id = ? AND stan = ? AND tx_time = ? AND mti = ?`, k.TerminalID, k.STAN, k.TxTime, k.MTI)
}

// FindOriginal finds the sale or authorisation a cancel names (DE 90's
// MTI, STAN and DE 7) within scope s: another listener's, terminal's,
// merchant's or MAC key's transaction is store.ErrNotFound, like one that does
// not exist.
func (j *journal) FindOriginal(ctx context.Context, s store.Scope, mti, stan, txTime string) (store.Txn, error) {
	return j.one(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE terminal_id = ? AND stan = ? AND tx_time = ? AND mti = ? AND original_id = 0
		AND listener = ? AND merchant_id = ? AND auth_key = ?`,
		s.TerminalID, stan, txTime, mti, s.Listener, s.MerchantID, s.AuthKey)
}

// findSaleQuery selects by RRN, approval code and scope: "rrn <> ”" lets
// txns_rrn_given serve it, "+state" keeps SQLite from reading every
// approved row through txns_state instead.
const findSaleQuery = `SELECT ` + txnColumns + ` FROM txns
	WHERE rrn = ? AND rrn <> '' AND approval_code = ? AND +state = 'approved' AND original_id = 0
	AND listener = ? AND terminal_id = ? AND merchant_id = ? AND auth_key = ? ORDER BY id LIMIT 2`

// FindSale finds the approved sale (or authorisation) with this RRN and
// approval code within scope s, for a refund: store.ErrNotFound when there is
// none, store.ErrAmbiguous when more than one matches.
func (j *journal) FindSale(ctx context.Context, s store.Scope, rrn, approvalCode string) (store.Txn, error) {
	found, err := collect(j.db.Query(ctx, findSaleQuery, rrn, approvalCode, s.Listener, s.TerminalID, s.MerchantID, s.AuthKey))
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: finding a sale by RRN: %w", err)
	}
	return sqlstore.OneSale(found)
}

// findByIssuerSTANQuery selects by route and issuer STAN; "issuer_stan <>
// ”" lets txns_issuer_given serve it.
const findByIssuerSTANQuery = `SELECT ` + txnColumns + ` FROM txns
	WHERE route = ? AND issuer_stan = ? AND issuer_stan <> '' ORDER BY id DESC LIMIT 1`

// FindByIssuerSTAN finds the transaction sent on route with issuer STAN.
func (j *journal) FindByIssuerSTAN(ctx context.Context, route, stan string) (store.Txn, error) {
	return j.one(ctx, findByIssuerSTANQuery, route, stan)
}

// InState lists transactions in a state (recovery, reports): those in
// flight through txns_forwarded, any other state by reading the table.
func (j *journal) InState(ctx context.Context, s store.State) ([]store.Txn, error) {
	q, args := `SELECT `+txnColumns+` FROM txns WHERE state = ? ORDER BY id`, []any{string(s)}
	if s == store.Forwarded {
		q, args = `SELECT `+txnColumns+` FROM txns WHERE state = 'forwarded' ORDER BY id`, nil
	}
	out, err := collect(j.db.Query(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("journal: listing %s: %w", s, err)
	}
	return out, nil
}

// inFlightQuery selects this instance's rows in flight (and those from
// before instances) through txns_forwarded.
const inFlightQuery = `SELECT ` + txnColumns + ` FROM txns WHERE state = 'forwarded' AND owner IN (?, '') ORDER BY id`

// InFlight lists this instance's forwarded transactions and those from
// before instances (owner "").
func (j *journal) InFlight(ctx context.Context) ([]store.Txn, error) {
	out, err := collect(j.db.Query(ctx, inFlightQuery, j.inst.Name))
	if err != nil {
		return nil, fmt.Errorf("journal: listing in-flight transactions of %q: %w", j.inst.Name, err)
	}
	return out, nil
}

// Between lists transactions created in [from, to): those of the id range
// that holds them (see idsCreated).
func (j *journal) Between(ctx context.Context, from, to time.Time) ([]store.Txn, error) {
	ids, err := j.idsCreated(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("journal: listing transactions: %w", err)
	}
	where, args := sqlite.Where(append([]sqlstore.Condition{{Column: "created_at", Op: ">=", Arg: from.UnixMilli()},
		{Column: "created_at", Op: "<", Arg: to.UnixMilli()}}, ids...))
	out, err := collect(j.db.Query(ctx, `SELECT `+txnColumns+` FROM txns`+where+` ORDER BY id`, args...))
	if err != nil {
		return nil, fmt.Errorf("journal: listing transactions: %w", err)
	}
	return out, nil
}

// one reads the transaction q selects: store.ErrNotFound when there is
// none.
func (j *journal) one(ctx context.Context, q string, args ...any) (store.Txn, error) {
	rows, err := j.db.Query(ctx, q, args...)
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reading transaction: %w", err)
	}
	defer rows.Close()
	return sqlstore.One(rows, sqlstore.ScanTxn)
}

// collect reads the transactions of a query's rows and closes them.
func collect(rows *sql.Rows, err error) ([]store.Txn, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.All(rows, sqlstore.ScanTxn)
}

// TerminalTotals are terminalID's open batches, one per currency: what it
// did after its last agreed reconciliation in that currency (an 0500
// answered 00 closes the batch of its currency, one journaled without a
// currency closes them all; a mismatch leaves it open), counted by EntryOf.
func (j *journal) TerminalTotals(ctx context.Context, terminalID string) (store.CurrencyTotals, error) {
	closed, err := j.closedBatches(ctx, terminalID)
	if err != nil {
		return nil, err
	}
	q, args := sqlite.OpenBatches(terminalID, closed)
	txns, err := collect(j.db.Query(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("journal: listing terminal %s's open batches: %w", terminalID, err)
	}
	return sqlstore.Totals(txns), nil
}

// closedBatches returns, per currency, the ID of terminalID's last agreed
// 0500 ("" for those journaled without a currency).
func (j *journal) closedBatches(ctx context.Context, terminalID string) (map[string]int64, error) {
	rows, err := j.db.Query(ctx, `SELECT currency, MAX(id) FROM txns WHERE terminal_id = ? AND mti = '0500' AND rc = '00' GROUP BY currency`,
		terminalID)
	if err != nil {
		return nil, fmt.Errorf("journal: finding the last reconciliations: %w", err)
	}
	defer rows.Close()
	closed, err := sqlstore.ClosedBatches(rows)
	if err != nil {
		return nil, fmt.Errorf("journal: finding the last reconciliations: %w", err)
	}
	return closed, nil
}

// Reconciliations lists 0500 rows answered with rc (e.g. "95" for the
// mismatches), newest first, with their recorded differences.
func (j *journal) Reconciliations(ctx context.Context, rc string, limit int) ([]store.Txn, error) {
	out, err := collect(j.db.Query(ctx, `SELECT `+txnColumns+` FROM txns WHERE mti = '0500' AND rc = ? ORDER BY id DESC LIMIT ?`, rc, limit))
	if err != nil {
		return nil, fmt.Errorf("journal: listing reconciliations: %w", err)
	}
	return out, nil
}

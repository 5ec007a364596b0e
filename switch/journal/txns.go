package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const txnColumns = `id, terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount, currency,
	masked_pan, token, pan_key, pan_key_version, pan_ct, card_expiry, route, issuer_stan, issuer_tx_time,
	rrn, approval_code, rc, state, remaining, original_id, created_at, updated_at`

// Begin records a new request. A request whose Key is already journaled
// returns ErrDuplicate with the stored row, so the caller can answer the
// duplicate from it instead of charging twice.
func (j *Journal) Begin(ctx context.Context, t Txn) (Txn, error) {
	now := j.now()
	t.CreatedAt, t.UpdatedAt = now, now
	err := j.exec1(ctx, OpBegin, func(tx *sql.Tx) error {
		return j.db.TxQueryRow(tx, `INSERT INTO txns (terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount,
			currency, masked_pan, token, pan_key, pan_key_version, pan_ct, card_expiry, route, issuer_stan, issuer_tx_time,
			rrn, approval_code, rc, state, remaining, original_id, created_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`,
			t.TerminalID, t.STAN, t.TxTime, t.MTI, t.Listener, t.MerchantID, t.ProcCode, t.Amount, t.Currency,
			t.MaskedPAN, t.Token, t.PANKey, t.PANKeyVersion, t.PANCiphertext, t.CardExpiry, t.Route, t.IssuerSTAN,
			t.IssuerTxTime, t.RRN, t.ApprovalCode, t.RC, string(t.State), t.Remaining, t.OriginalID,
			now.UnixMilli(), now.UnixMilli()).Scan(&t.ID)
	})
	if isUnique(err) {
		stored, gerr := j.FindByKey(ctx, t.Key)
		if gerr != nil {
			return Txn{}, fmt.Errorf("journal: reading the original of a duplicate: %w", gerr)
		}
		return stored, ErrDuplicate
	}
	if err != nil {
		return Txn{}, fmt.Errorf("journal: recording request: %w", err)
	}
	return t, nil
}

// Update is what changes as a transaction goes on.
type Update struct {
	State                        State
	Route, IssuerSTAN, IssuerTxT string
	RRN, ApprovalCode, RC        string
	PANKey                       string
	PANKeyVersion                int
	PANCiphertext                []byte
	MaskedPAN, Token, CardExpiry string
	// Remaining, when not nil, sets what remains charged.
	Remaining *int64
}

// Set records an update durably (returns after the group commit).
func (j *Journal) Set(ctx context.Context, id int64, u Update, event string) error {
	now := j.now().UnixMilli()
	err := j.exec(ctx, OpSet, func(tx *sql.Tx) error {
		q := `UPDATE txns SET state = ?, updated_at = ?,
			route = CASE WHEN ? <> '' THEN ? ELSE route END,
			issuer_stan = CASE WHEN ? <> '' THEN ? ELSE issuer_stan END,
			issuer_tx_time = CASE WHEN ? <> '' THEN ? ELSE issuer_tx_time END,
			rrn = CASE WHEN ? <> '' THEN ? ELSE rrn END,
			approval_code = CASE WHEN ? <> '' THEN ? ELSE approval_code END,
			rc = CASE WHEN ? <> '' THEN ? ELSE rc END,
			masked_pan = CASE WHEN ? <> '' THEN ? ELSE masked_pan END,
			token = CASE WHEN ? <> '' THEN ? ELSE token END,
			card_expiry = CASE WHEN ? <> '' THEN ? ELSE card_expiry END,
			pan_key = CASE WHEN ? <> '' THEN ? ELSE pan_key END,
			pan_key_version = CASE WHEN ? <> '' THEN ? ELSE pan_key_version END,
			pan_ct = COALESCE(?, pan_ct),
			remaining = COALESCE(?, remaining)
			WHERE id = ?`
		var rem any
		if u.Remaining != nil {
			rem = *u.Remaining
		}
		var ct any
		if u.PANCiphertext != nil {
			ct = u.PANCiphertext
		}
		res, err := j.db.TxExec(tx, q, string(u.State), now,
			u.Route, u.Route, u.IssuerSTAN, u.IssuerSTAN, u.IssuerTxT, u.IssuerTxT, u.RRN, u.RRN,
			u.ApprovalCode, u.ApprovalCode, u.RC, u.RC, u.MaskedPAN, u.MaskedPAN, u.Token, u.Token,
			u.CardExpiry, u.CardExpiry, u.PANKey, u.PANKey, u.PANKey, u.PANKeyVersion, ct, rem, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		if event != "" {
			_, err = j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, id, now, string(u.State), event)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("journal: updating transaction %d: %w", id, err)
	}
	return nil
}

// Cancel takes amount off what remains of the approved sale origID (and,
// when rc is set, records the cancel row cancelID as answered), atomically: of two
// concurrent cancels only what remains can be taken. ErrExceeds when amount
// is more than remains.
func (j *Journal) Cancel(ctx context.Context, origID, cancelID, amount int64, rc, approval string) (remaining int64, err error) {
	now := j.now().UnixMilli()
	err = j.exec(ctx, OpCancel, func(tx *sql.Tx) error {
		if err := j.db.TxQueryRow(tx, `UPDATE txns SET remaining = remaining - ?, updated_at = ?
			WHERE id = ? AND state = 'approved' AND remaining >= ? RETURNING remaining`,
			amount, now, origID, amount).Scan(&remaining); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrExceeds
			}
			return err
		}
		if rc != "" {
			if _, err := j.db.TxExec(tx, `UPDATE txns SET state = 'answered', rc = ?, approval_code = ?, updated_at = ? WHERE id = ?`,
				rc, approval, now, cancelID); err != nil {
				return err
			}
		}
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, origID, now, "cancelled",
			fmt.Sprintf("%d cancelled by transaction %d, %d remains", amount, cancelID, remaining))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("journal: cancelling %d of transaction %d: %w", amount, origID, err)
	}
	return remaining, nil
}

// Event appends a note to a transaction's history.
func (j *Journal) Event(ctx context.Context, id int64, kind, detail string) error {
	return j.exec(ctx, OpEvent, func(tx *sql.Tx) error {
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, id, j.now().UnixMilli(), kind, detail)
		return err
	})
}

// Get reads one transaction.
func (j *Journal) Get(ctx context.Context, id int64) (Txn, error) {
	return scanTxn(j.db.QueryRow(ctx, `SELECT `+txnColumns+` FROM txns WHERE id = ?`, id))
}

// FindByKey finds a request by terminal ID, STAN, DE 7 and MTI.
func (j *Journal) FindByKey(ctx context.Context, k Key) (Txn, error) {
	return scanTxn(j.db.QueryRow(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE terminal_id = ? AND stan = ? AND tx_time = ? AND mti = ?`, k.TerminalID, k.STAN, k.TxTime, k.MTI))
}

// FindOriginal finds the sale a cancel names: same terminal, DE 90's STAN,
// DE 7 and MTI. Another terminal's sale is never found.
func (j *Journal) FindOriginal(ctx context.Context, terminalID, mti, stan, txTime string) (Txn, error) {
	return j.FindByKey(ctx, Key{TerminalID: terminalID, STAN: stan, TxTime: txTime, MTI: mti})
}

// FindByRRN finds the approved sale with this RRN (for refunds).
func (j *Journal) FindByRRN(ctx context.Context, rrn string) (Txn, error) {
	return scanTxn(j.db.QueryRow(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE rrn = ? AND original_id = 0 ORDER BY id LIMIT 1`, rrn))
}

// FindByIssuerSTAN finds the transaction sent on route with issuer STAN.
func (j *Journal) FindByIssuerSTAN(ctx context.Context, route, stan string) (Txn, error) {
	return scanTxn(j.db.QueryRow(ctx, `SELECT `+txnColumns+` FROM txns
		WHERE route = ? AND issuer_stan = ? ORDER BY id DESC LIMIT 1`, route, stan))
}

// InState lists transactions in a state (recovery, reports).
func (j *Journal) InState(ctx context.Context, s State) ([]Txn, error) {
	rows, err := j.db.Query(ctx, `SELECT `+txnColumns+` FROM txns WHERE state = ? ORDER BY id`, string(s))
	if err != nil {
		return nil, fmt.Errorf("journal: listing %s: %w", s, err)
	}
	return collect(rows)
}

// Between lists transactions created in [from, to).
func (j *Journal) Between(ctx context.Context, from, to time.Time) ([]Txn, error) {
	rows, err := j.db.Query(ctx, `SELECT `+txnColumns+` FROM txns WHERE created_at >= ? AND created_at < ? ORDER BY id`,
		from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("journal: listing transactions: %w", err)
	}
	return collect(rows)
}

func collect(rows *sql.Rows) ([]Txn, error) {
	defer rows.Close()
	var out []Txn
	for rows.Next() {
		t, err := scanTxn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanTxn(row scanner) (Txn, error) {
	var t Txn
	var state string
	var created, updated int64
	err := row.Scan(&t.ID, &t.TerminalID, &t.STAN, &t.TxTime, &t.MTI, &t.Listener, &t.MerchantID, &t.ProcCode, &t.Amount,
		&t.Currency, &t.MaskedPAN, &t.Token, &t.PANKey, &t.PANKeyVersion, &t.PANCiphertext, &t.CardExpiry, &t.Route,
		&t.IssuerSTAN, &t.IssuerTxTime, &t.RRN, &t.ApprovalCode, &t.RC, &state, &t.Remaining, &t.OriginalID, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Txn{}, ErrNotFound
	}
	if err != nil {
		return Txn{}, fmt.Errorf("journal: reading transaction: %w", err)
	}
	t.State = State(state)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return t, nil
}

// Restore gives amount back to what remains of sale origID (a cancel the
// issuer refused).
func (j *Journal) Restore(ctx context.Context, origID, amount int64, why string) error {
	now := j.now().UnixMilli()
	return j.exec(ctx, OpRestore, func(tx *sql.Tx) error {
		if _, err := j.db.TxExec(tx, `UPDATE txns SET remaining = remaining + ?, updated_at = ? WHERE id = ?`, amount, now, origID); err != nil {
			return err
		}
		_, err := j.db.TxExec(tx, `INSERT INTO events (txn_id, at, kind, detail) VALUES (?,?,?,?)`, origID, now, "cancel_refused", why)
		return err
	})
}

// Totals are a terminal's batch totals as the journal sees them.
type Totals struct {
	Sales, SalesAmount     int64
	Cancels, CancelsAmount int64
	Refunds, RefundsAmount int64
}

// TerminalTotals sums what terminalID did after its last reconciliation
// (0500s answered 00 close a batch; a mismatch leaves it open): approved sales, cancels that
// gave money back, and refunds.
func (j *Journal) TerminalTotals(ctx context.Context, terminalID string) (Totals, error) {
	var since int64
	if err := j.db.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM txns WHERE terminal_id = ? AND mti = '0500' AND rc = '00'`,
		terminalID).Scan(&since); err != nil {
		return Totals{}, fmt.Errorf("journal: finding the last reconciliation: %w", err)
	}
	var t Totals
	err := j.db.QueryRow(ctx, `SELECT
		COALESCE(SUM(CASE WHEN mti IN ('0100','0200') AND original_id = 0 AND state = 'approved' THEN 1 END), 0),
		COALESCE(SUM(CASE WHEN mti IN ('0100','0200') AND original_id = 0 AND state = 'approved' THEN amount END), 0),
		COALESCE(SUM(CASE WHEN mti = '0400' AND original_id > 0 AND rc = '00' AND amount > 0 THEN 1 END), 0),
		COALESCE(SUM(CASE WHEN mti = '0400' AND original_id > 0 AND rc = '00' THEN amount END), 0),
		COALESCE(SUM(CASE WHEN mti = '0200' AND original_id > 0 AND rc = '00' THEN 1 END), 0),
		COALESCE(SUM(CASE WHEN mti = '0200' AND original_id > 0 AND rc = '00' THEN amount END), 0)
		FROM txns WHERE terminal_id = ? AND id > ?`, terminalID, since).Scan(
		&t.Sales, &t.SalesAmount, &t.Cancels, &t.CancelsAmount, &t.Refunds, &t.RefundsAmount)
	if err != nil {
		return Totals{}, fmt.Errorf("journal: summing terminal totals: %w", err)
	}
	return t, nil
}

// Reconciliations lists 0500 rows answered with rc (e.g. "95" for the
// mismatches), newest first, with their recorded differences.
func (j *Journal) Reconciliations(ctx context.Context, rc string, limit int) ([]Txn, error) {
	rows, err := j.db.Query(ctx, `SELECT `+txnColumns+` FROM txns WHERE mti = '0500' AND rc = ? ORDER BY id DESC LIMIT ?`, rc, limit)
	if err != nil {
		return nil, fmt.Errorf("journal: listing reconciliations: %w", err)
	}
	return collect(rows)
}

package sqlstore

// Column lists of the tables both backends keep with the same columns
// (the schemas themselves stay per backend: SQLite's file is created and
// extended in place, PostgreSQL's by versioned migrations).
const (
	// TxnColumns are a txns row as ScanTxn reads it.
	TxnColumns = `id, terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount, currency,
	masked_pan, token, pan_key, pan_key_version, pan_ct, card_expiry, route, issuer_stan, issuer_tx_time,
	rrn, approval_code, rc, state, remaining, original_id, created_at, updated_at, auth_key, content_hash, owner`
	// SAFColumns are a saf row as ScanSAF reads it.
	SAFColumns = `id, txn_id, route, kind, amount, attempts, next_at, expires_at, state,
	last_error, stan, tx_time, created_at, owner, lease_until`
	// TokenColumns are a tokens row as ScanToken reads it and TokenArgs
	// writes it.
	TokenColumns = `token, pan_key, pan_key_version, pan_ct, pan_hash, hash_version, masked_pan, card_expiry,
	expires_at, status, kind, domain, use_count, max_uses, created_at, updated_at`
)

// TxnInsertList are the columns a new txns row is written with (TxnColumns
// but the id).
const TxnInsertList = "terminal_id, stan, tx_time, mti, listener, merchant_id, proc_code, amount, " +
	"currency, masked_pan, token, pan_key, pan_key_version, pan_ct, card_expiry, route, issuer_stan, " +
	"issuer_tx_time, rrn, approval_code, rc, state, remaining, original_id, created_at, updated_at, " +
	"auth_key, content_hash, owner"

package journal

const schema = `
CREATE TABLE IF NOT EXISTS txns (
	id              INTEGER PRIMARY KEY,
	terminal_id     TEXT NOT NULL,
	stan            TEXT NOT NULL,
	tx_time         TEXT NOT NULL,
	mti             TEXT NOT NULL,
	listener        TEXT NOT NULL,
	merchant_id     TEXT NOT NULL,
	proc_code       TEXT NOT NULL,
	amount          INTEGER NOT NULL,
	currency        TEXT NOT NULL,
	masked_pan      TEXT NOT NULL,
	token           TEXT NOT NULL,
	pan_key         TEXT NOT NULL,
	pan_key_version INTEGER NOT NULL,
	pan_ct          BLOB,
	card_expiry     TEXT NOT NULL,
	route           TEXT NOT NULL,
	issuer_stan     TEXT NOT NULL,
	issuer_tx_time  TEXT NOT NULL,
	rrn             TEXT NOT NULL,
	approval_code   TEXT NOT NULL,
	rc              TEXT NOT NULL,
	state           TEXT NOT NULL,
	remaining       INTEGER NOT NULL,
	original_id     INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	UNIQUE (terminal_id, stan, tx_time, mti)
);
CREATE INDEX IF NOT EXISTS txns_rrn ON txns(rrn);
CREATE INDEX IF NOT EXISTS txns_state ON txns(state);
CREATE INDEX IF NOT EXISTS txns_issuer ON txns(route, issuer_stan);
CREATE INDEX IF NOT EXISTS txns_created ON txns(created_at);

CREATE TABLE IF NOT EXISTS events (
	id      INTEGER PRIMARY KEY,
	txn_id  INTEGER NOT NULL,
	at      INTEGER NOT NULL,
	kind    TEXT NOT NULL,
	detail  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_txn ON events(txn_id);

CREATE TABLE IF NOT EXISTS saf (
	id          INTEGER PRIMARY KEY,
	txn_id      INTEGER NOT NULL,
	route       TEXT NOT NULL,
	kind        TEXT NOT NULL,
	amount      INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	state       TEXT NOT NULL,
	last_error  TEXT NOT NULL DEFAULT '',
	stan        TEXT NOT NULL DEFAULT '',
	tx_time     TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS saf_due ON saf(state, next_at);
`

// sequenceSchema keeps durable counters (the RRN sequence): a block of
// numbers is reserved before any of them is used, so a restart never
// hands out a number twice.
const sequenceSchema = `
CREATE TABLE IF NOT EXISTS sequences (
	name TEXT PRIMARY KEY,
	next INTEGER NOT NULL
);
`

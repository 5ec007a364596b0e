-- The store: journal of transactions and their events, the SAF queue of
-- give-backs, the instances' heartbeats, durable sequences and the token
-- vault. Times are Unix milliseconds (BIGINT), as in the embedded store.
CREATE TABLE txns (
	id              BIGSERIAL PRIMARY KEY,
	terminal_id     TEXT NOT NULL,
	stan            TEXT NOT NULL,
	tx_time         TEXT NOT NULL,
	mti             TEXT NOT NULL,
	listener        TEXT NOT NULL,
	merchant_id     TEXT NOT NULL,
	proc_code       TEXT NOT NULL,
	amount          BIGINT NOT NULL,
	currency        TEXT NOT NULL,
	masked_pan      TEXT NOT NULL,
	token           TEXT NOT NULL,
	pan_key         TEXT NOT NULL,
	pan_key_version INTEGER NOT NULL,
	pan_ct          BYTEA,
	card_expiry     TEXT NOT NULL,
	route           TEXT NOT NULL,
	issuer_stan     TEXT NOT NULL,
	issuer_tx_time  TEXT NOT NULL,
	rrn             TEXT NOT NULL,
	approval_code   TEXT NOT NULL,
	rc              TEXT NOT NULL,
	state           TEXT NOT NULL,
	remaining       BIGINT NOT NULL,
	original_id     BIGINT NOT NULL,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL,
	auth_key        TEXT NOT NULL DEFAULT '',
	content_hash    TEXT NOT NULL DEFAULT '',
	owner           TEXT NOT NULL DEFAULT '',
	CONSTRAINT txns_key UNIQUE (terminal_id, stan, tx_time, mti)
);
-- Every index here is paid by each sale's insert and outcome update, so
-- only what a look-up needs: refunds by RRN, late answers by issuer STAN,
-- settlement by time, in-flight work by owner (a partial index: only the
-- few forwarded rows are in it). A terminal's open batch rides txns_key
-- (terminal_id first).
CREATE INDEX txns_rrn ON txns (rrn);
CREATE INDEX txns_issuer ON txns (route, issuer_stan);
CREATE INDEX txns_created ON txns (created_at);
CREATE INDEX txns_forwarded ON txns (owner) WHERE state = 'forwarded';

CREATE TABLE events (
	id      BIGSERIAL PRIMARY KEY,
	txn_id  BIGINT NOT NULL,
	at      BIGINT NOT NULL,
	kind    TEXT NOT NULL,
	detail  TEXT NOT NULL
);
CREATE INDEX events_txn ON events (txn_id);

CREATE TABLE saf (
	id          BIGSERIAL PRIMARY KEY,
	txn_id      BIGINT NOT NULL,
	route       TEXT NOT NULL,
	kind        TEXT NOT NULL,
	amount      BIGINT NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	state       TEXT NOT NULL,
	last_error  TEXT NOT NULL DEFAULT '',
	stan        TEXT NOT NULL DEFAULT '',
	tx_time     TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	owner       TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX saf_due ON saf (state, route, next_at);
CREATE INDEX saf_owner ON saf (owner, state);

CREATE TABLE instances (
	name        TEXT PRIMARY KEY,
	lease_until BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);

CREATE TABLE sequences (
	name TEXT PRIMARY KEY,
	next BIGINT NOT NULL
);

CREATE TABLE tokens (
	token           TEXT PRIMARY KEY,
	pan_key         TEXT NOT NULL,
	pan_key_version INTEGER NOT NULL,
	pan_ct          BYTEA NOT NULL,
	pan_hash        BYTEA NOT NULL,
	hash_version    INTEGER NOT NULL,
	masked_pan      TEXT NOT NULL,
	card_expiry     TEXT NOT NULL,
	expires_at      BIGINT NOT NULL,
	status          TEXT NOT NULL,
	kind            TEXT NOT NULL,
	domain          TEXT NOT NULL,
	use_count       INTEGER NOT NULL DEFAULT 0,
	max_uses        INTEGER NOT NULL DEFAULT 0,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL
);
CREATE INDEX tokens_pan_hash ON tokens (pan_hash);

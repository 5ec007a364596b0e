package embedded

import (
	"database/sql"
	"errors"
	"fmt"
)

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
	auth_key        TEXT NOT NULL DEFAULT '',
	content_hash    TEXT NOT NULL DEFAULT '',
	owner           TEXT NOT NULL DEFAULT '',
	first_event_at     INTEGER NOT NULL DEFAULT -1,
	first_event_kind   TEXT NOT NULL DEFAULT '',
	first_event_detail TEXT NOT NULL DEFAULT '',
	UNIQUE (terminal_id, stan, tx_time, mti)
);
CREATE INDEX IF NOT EXISTS txns_rrn_given ON txns(rrn) WHERE rrn <> '';
CREATE INDEX IF NOT EXISTS txns_issuer_given ON txns(route, issuer_stan) WHERE issuer_stan <> '';

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
	updated_at  INTEGER NOT NULL,
	owner       TEXT NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS saf_due ON saf(state, next_at);
`

// instanceSchema keeps the instances' heartbeats: an instance owns its
// in-flight rows while lease_until (Unix ms) is ahead.
const instanceSchema = `
CREATE TABLE IF NOT EXISTS instances (
	name        TEXT PRIMARY KEY,
	lease_until INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
`

// txns_rrn_given and txns_issuer_given hold only the rows with an RRN or
// an issuer STAN: a request is recorded without them, so the sale's first
// write touches neither index (each index a write touches costs a few µs
// per sale). A query that may use them says "rrn <> ''" or
// "issuer_stan <> ''" itself (SQLite uses a partial index only for a
// query whose WHERE contains the index's). droppedIndexes were the
// indexes over every row.

// txns_forwarded holds only the rows in flight (state 'forwarded'), by
// owner: what recovery, take-over and InFlight look up by state. A sale is
// recorded forwarded and answered by the update that settles it, so the
// index gains one entry per sale and loses it again, and stays a few pages
// however long the journal; the index over every row's state it replaces
// (txns_state) took a delete and an insert per update and grew with the
// journal. A query that may use it says "state = 'forwarded'" as a
// literal. It is created by migrate, after the owner column exists.
const inFlightIndex = `CREATE INDEX IF NOT EXISTS txns_forwarded ON txns(owner) WHERE state = 'forwarded'`

// The SAF owner column needs no index: what is looked up by owner there is
// also pending (saf_due), a few rows.

// sequenceSchema keeps durable counters (the RRN sequence): a block of
// numbers is reserved before any of them is used, so a restart never
// hands out a number twice.
const sequenceSchema = `
CREATE TABLE IF NOT EXISTS sequences (
	name TEXT PRIMARY KEY,
	next INTEGER NOT NULL
);
`

// addedColumns are the columns added after the first schema, in order;
// Open adds those a journal file from an older version lacks.
var addedColumns = []struct{ table, name, decl string }{
	// auth_key: the MAC key label of the listener the request came on
	// ('' on plain listeners); a keyed terminal acts only on its own sales.
	{"txns", "auth_key", "TEXT NOT NULL DEFAULT ''"},
	// content_hash: what a repeat of the request must equal besides its
	// card (see pipeline's content hash); '' on rows from older versions,
	// whose repeats are answered 94.
	{"txns", "content_hash", "TEXT NOT NULL DEFAULT ''"},
	// owner: the instance that recorded the row ('' on rows from before
	// instances: recovered by whichever instance opens the file).
	{"txns", "owner", "TEXT NOT NULL DEFAULT ''"},
	// owner, lease_until: the instance holding a SAF item and until when
	// (0: claimable by any instance).
	{"saf", "owner", "TEXT NOT NULL DEFAULT ''"},
	{"saf", "lease_until", "INTEGER NOT NULL DEFAULT 0"},
	// first_event_*: the transaction's first event, kept in its row (see
	// below); -1 on rows from older versions, whose history is all in
	// events.
	{"txns", "first_event_at", "INTEGER NOT NULL DEFAULT -1"},
	{"txns", "first_event_kind", "TEXT NOT NULL DEFAULT ''"},
	{"txns", "first_event_detail", "TEXT NOT NULL DEFAULT ''"},
}

// A transaction's first event is kept in its own row when it comes with
// an update (Set: a sale's answer, its time-out): first_event_at is then
// its time (Unix ms), and the update writes no events row, so a sale's
// answer costs no events row and no events_txn entry (two B-tree inserts
// and two more pages in its commit). first_event_at is 0 on a new row
// (no event yet: the next Set with an event may use the row) and -1 once
// an events row was written for the transaction (the history is then
// wholly in events, after the row's first event if it has one), and on
// the rows of older versions. History reads the row's event first, then
// the events rows by id: the same history, in the same order, as when
// every event was an events row.

// droppedIndexes are indexes of older versions, dropped when the journal
// is opened (txns_created: see created.go).
var droppedIndexes = []string{"txns_rrn", "txns_issuer", "txns_state", "txns_created"}

// journalVersion is the journal file's schema version, kept in its PRAGMA
// user_version: 1 from the version that keeps a sale's answer in its row
// and marks a clock set back (journal_marks); 0 on files of the versions
// before. Raise it with a change an older binary would misread (and
// handle the files below it in migrate). A journal file is not shared
// across switch versions nor opened by an older one again (docs/store.md):
// the versions before 1 do not read user_version, this one and later
// refuse a file whose version is newer than they know.
const journalVersion = 1

// ErrJournalNewer: the journal file was written by a newer switch version
// (its user_version is above journalVersion); Open refuses it rather than
// misread it.
var ErrJournalNewer = errors.New("journal file is from a newer switch version")

// migrate adds the columns an existing journal file lacks, drops the
// indexes it no longer keeps and creates those that need added columns,
// then records journalVersion; it refuses a file of a newer version
// (ErrJournalNewer) before migrating it (the schema's CREATE ... IF NOT
// EXISTS statements, which add nothing a newer file lacks, ran before).
func migrate(db *sql.DB) error {
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if version > journalVersion {
		return fmt.Errorf("schema version %d, this switch knows up to %d: %w", version, journalVersion, ErrJournalNewer)
	}
	for _, ix := range droppedIndexes {
		if _, err := db.Exec(`DROP INDEX IF EXISTS ` + ix); err != nil {
			return fmt.Errorf("dropping index %s: %w", ix, err)
		}
	}
	have := map[string]map[string]bool{}
	for _, c := range addedColumns {
		if have[c.table] == nil {
			cols, err := columnsOf(db, c.table)
			if err != nil {
				return err
			}
			have[c.table] = cols
		}
		if have[c.table][c.name] {
			continue
		}
		if _, err := db.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.name + ` ` + c.decl); err != nil {
			return fmt.Errorf("adding column %s.%s: %w", c.table, c.name, err)
		}
	}
	if _, err := db.Exec(inFlightIndex); err != nil {
		return fmt.Errorf("creating index txns_forwarded: %w", err)
	}
	if version < journalVersion {
		if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, journalVersion)); err != nil {
			return fmt.Errorf("recording the schema version: %w", err)
		}
	}
	return nil
}

// columnsOf lists table's columns.
func columnsOf(db *sql.DB, table string) (map[string]bool, error) {
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("reading the %s columns: %w", table, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("reading the %s columns: %w", table, err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the %s columns: %w", table, err)
	}
	return have, nil
}

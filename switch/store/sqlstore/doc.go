// Package sqlstore is what the SQL backends of package store
// (store/embedded on SQLite, store/postgres on PostgreSQL) share: the
// tables' column lists, scanning rows into the store types, building a
// search's WHERE clause in either placeholder style, the SAF actions'
// state checks and the history events' texts, and the decisions that
// turn "the write touched no row" into the store's typed errors. A
// backend keeps only what is its engine's: the SQL text where the
// dialects differ, transactions and the group commit.
//
// Nothing here allocates on a sale's path beyond what the backends did
// before: the scanners fill the caller's values, the texts are built only
// for the writes that record them.
package sqlstore

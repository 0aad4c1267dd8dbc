// Package sqlite is the SQLite connector, built on modernc.org/sqlite (pure
// Go, driver name "sqlite").
//
// # Connections
//
// The database is opened in WAL journal mode with a busy timeout, so the
// user's application and the engine can both write: a writer that finds the
// database locked waits instead of failing. SQLite has one writer, so the
// connector applies through a single connection (BEGIN IMMEDIATE) and
// reads through a small separate pool.
//
// # Values
//
// Values are stored the way SQLite applications usually store them: times
// as UTC text "2006-01-02 15:04:05.999999999" (dates as "2006-01-02"),
// booleans as 0/1, decimals as text. Times are read back from any of
// SQLite's text forms (no offset means UTC), from INTEGER Unix seconds and
// from a REAL as SQLite's 'auto' modifier reads it: a Julian day number
// below 5373484.5, else Unix seconds. A column declared NUMERIC or DECIMAL
// has NUMERIC affinity, and SQLite converts numeric-looking text to REAL,
// which keeps only about 15 significant digits; such values are read back
// formatted at the declared scale. To keep decimals exact, declare the
// column with a type that has TEXT affinity and names DECIMAL, for example
// DECIMAL_TEXT(30,4).
//
// # Capture
//
// Capture installs AFTER INSERT, UPDATE and DELETE triggers on each watched
// table. They append one row per row change to _dw_changes, with the old
// and new rows as JSON objects of every column (so Old is always complete).
//
// SQLite has no TRUNCATE, so capture never reports a change.Truncate. The
// statement that empties a table, DELETE FROM t without WHERE, would use
// SQLite's truncate optimisation, but not on a table with triggers: the
// DELETE trigger fires for every row, and the table is emptied on the
// other side row by row, as deletes, whatever the map's on_truncate says
// (the conformance suite's CaptureTruncate checks it).
// Values are tagged in the JSON so that each survives exactly: integers as
// JSON numbers, reals as "f" and 17 significant digits, text as "t" and
// the text, blobs as "x" and hex.
//
// SQLite has no transaction id, but it has one writer at a time and a
// commit is atomic: the change rows of one source transaction get
// consecutive sequence numbers, later commits get larger ones, and a reader
// sees either all of a transaction's rows or none. A poll therefore holds
// one or more whole source transactions, never a part of one, and Next
// returns the rows of one poll as one change.Tx whose position is the last
// sequence number. To keep memory bounded a poll reads at most 5000 rows;
// a source transaction larger than that is split across several Txs, each
// still in order and each with a larger position.
//
// # Echo suppression
//
// The engine's own writes must not be captured, or they would be sent
// back. The table _dw_marker holds a single row whose column active is 1
// only inside Apply's transaction: Apply sets it at the start of its
// transaction and resets it before commit, so every other connection only
// ever sees 0. The triggers copy (SELECT active FROM _dw_marker) into the
// change row's origin column; the capturer drops rows with origin 1,
// counts them (EchoesSuppressed) and still advances past them.
//
// # Positions
//
// A capture position's LSN is the _dw_changes sequence number. Ack deletes
// the change rows up to the acknowledged position, so the table holds only
// what is not yet durable downstream. Apply records each stream's applied
// position in _dw_progress in the same transaction as the writes.
package sqlite

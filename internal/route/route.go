// Package route is the first stage after capture: it splits a group of a
// side's source transactions into each map's share, keeping every
// transaction's changes in the order the source wrote them, and finds the
// transactions that truncate a table (handled apart, by the map's
// on_truncate). It is pure: the engine decides, per map and status, what a
// share becomes (applied, queued).
package route

import "github.com/dualwrite/dualwrite/internal/change"

// Share returns the part of each transaction that changes table, in
// order; transactions that do not touch it are left out.
func Share(txs []change.Tx, table string) []change.Tx {
	var parts []change.Tx
	for _, tx := range txs {
		var part []change.Change
		for _, c := range tx.Changes {
			if c.Table == table {
				part = append(part, c)
			}
		}
		if len(part) == 0 {
			continue
		}
		sub := tx
		sub.Changes = part
		parts = append(parts, sub)
	}
	return parts
}

// TruncateIndex returns the index of the first transaction of txs that
// holds a truncate, or -1.
func TruncateIndex(txs []change.Tx) int {
	for i, tx := range txs {
		for _, c := range tx.Changes {
			if c.Op == change.Truncate {
				return i
			}
		}
	}
	return -1
}

// Fits reports whether a transaction of n changes can join a group that
// holds txs transactions and changes changes, within the group bounds.
func Fits(txs, changes, n, maxTxs, maxChanges int) bool {
	return txs < maxTxs && changes+n <= maxChanges
}

package problem

// Codes added by the PostgreSQL connector. Listed in docs/ERRORS.md next
// to DW2010.
const (
	// Truncated: a table of the map was truncated and its on_truncate is
	// stop (or a propagated truncate could not delete every row): the
	// engine stopped the map. Truncate the other side too if that was
	// meant, then run the map again (with initial sync).
	Truncated Code = "DW2011"
)

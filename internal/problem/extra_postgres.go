package problem

// Codes added by the PostgreSQL connector. Listed in docs/ERRORS.md next
// to DW2010.
const (
	// Truncated: a watched table was truncated at the source. A truncate
	// carries no rows, so the other side cannot follow it row by row;
	// resync the maps on the table (stop, then run with initial sync).
	// The error also wraps connector.ErrLogPurged.
	Truncated Code = "DW2011"
)

package problem

// Codes of visible stalls and of maps the engine stops because of a
// change to their tables (TRUNCATE, schema changes). Listed in
// docs/ERRORS.md; like the others, never reused or renumbered.
const (
	// StreamStalled: a side's change stream cannot progress for a reason
	// that is not a row's fault (the other side cannot be written, the
	// capture cannot be reopened, the control store fails). The message
	// gives the cause; the stall clears by itself when the cause goes.
	StreamStalled Code = "DW2050"
	// SchemaChanged: a table of the map changed so that the map no longer
	// fits it (a mapped column dropped or retyped, the table renamed or
	// dropped). The engine stopped the map; fix the table or the map, then
	// run it again (with initial sync).
	SchemaChanged Code = "DW2051"
	// ColumnAdded: a column was added to a mapped table. Reported in the
	// activity log only; nothing changes until the map uses the column.
	ColumnAdded Code = "DW2052"
)

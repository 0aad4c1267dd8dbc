package problem

// Ownership and source identity codes (docs/adr/20261204-ownership-and-source-identity.md).
// Listed in docs/ERRORS.md; never reused or renumbered.
const (
	// DataDirLocked: another engine (serve or demo) holds the data
	// directory's lock. Stop that process (the message names its pid), or
	// give this one another engine.data_dir.
	DataDirLocked Code = "DW2040"
	// ForeignPosition: a recorded position (the control store's capture
	// position of a side, or a stream's applied position in a target's
	// progress table) was recorded for another source than the one the
	// side is now. It is never compared with this source's positions.
	// Resync, or forget it deliberately with `dualwrite ownership reset`.
	ForeignPosition Code = "DW2041"
	// ForeignObject: a replication slot, publication or replication origin
	// that capture would use exists, but this control store did not create
	// it. Adopt it (`dualwrite ownership adopt`) or drop it (`dualwrite
	// ownership drop`) deliberately.
	ForeignObject Code = "DW2042"
	// LinkOwned: another control store (another engine's data_dir) owns
	// the link on this database. Stop that engine; to move the link here
	// on purpose, `dualwrite ownership adopt`.
	LinkOwned Code = "DW2043"
)

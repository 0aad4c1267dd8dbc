package connector

import "errors"

// ErrNoTable means the table does not exist on the side. Callers report
// it as DW1021 and stop using the table.
var ErrNoTable = errors.New("no such table")

// ErrLogPurged means the position capture was asked to resume from is no
// longer in the source's log. The map needs a resync (stop, then run with
// initial sync); callers report it as DW2010.
var ErrLogPurged = errors.New("change log purged past the saved position")

// ErrBadRef means a batch's Ref values or Return lists are malformed: a
// Ref in a Key or Expect, a Ref to a later write, or to a column its write
// does not Return. It is a programming error in the caller: Apply returns
// it before writing anything, and retrying the batch cannot help.
var ErrBadRef = errors.New("malformed reference between writes of a batch")

// ErrRefUnresolved means a write's Ref could not be resolved because the
// referenced write failed, was unmatched or left no row. It is a row
// error of the referencing write (DW3002): callers park that row with the
// referenced one and retry both together.
var ErrRefUnresolved = errors.New("reference to another write not resolved")

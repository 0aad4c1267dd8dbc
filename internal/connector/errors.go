package connector

import "errors"

// ErrNoTable means the table does not exist on the side. Callers report
// it as DW1021 and stop using the table.
var ErrNoTable = errors.New("no such table")

// ErrLogPurged means the position capture was asked to resume from is no
// longer in the source's log. The map needs a resync (stop, then run with
// initial sync); callers report it as DW2010.
var ErrLogPurged = errors.New("change log purged past the saved position")

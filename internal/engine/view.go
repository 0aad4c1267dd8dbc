package engine

import "github.com/dualwrite/dualwrite/internal/wire"

// The engine's views are the API's wire types (internal/wire), so that
// clients decode them without linking the engine. The aliases keep the
// engine's own code speaking of its views.
type (
	Status       = wire.Status
	Action       = wire.Action
	MapView      = wire.MapView
	SideLag      = wire.SideLag
	RunOptions   = wire.RunOptions
	ActionResult = wire.ActionResult
	RowError     = wire.RowError
	Activity     = wire.Activity
	RetryResult  = wire.RetryResult
	Condition    = wire.Condition
)

// The statuses and actions, as the engine names them.
const (
	NotRunning   = wire.NotRunning
	Initializing = wire.Initializing
	Running      = wire.Running
	Paused       = wire.Paused
	Resuming     = wire.Resuming

	ActionRun   = wire.ActionRun
	ActionPause = wire.ActionPause
	ActionStop  = wire.ActionStop
)

package engine

import "time"

// Status is a map's lifecycle status.
type Status string

const (
	NotRunning   Status = "Not running"
	Initializing Status = "Initializing"
	Running      Status = "Running"
	Paused       Status = "Paused"
	Resuming     Status = "Resuming"
)

// Action is a lifecycle action.
type Action string

const (
	ActionRun   Action = "run"
	ActionPause Action = "pause"
	ActionStop  Action = "stop"
)

// MapView is what `maps list` and GET /api/v1/maps show of one map.
type MapView struct {
	Name      string    `json:"name"`
	Left      string    `json:"left"`
	Right     string    `json:"right"`
	Status    Status    `json:"status"`
	Actions   []Action  `json:"actions"`
	Master    string    `json:"master"`
	DependsOn []string  `json:"depends_on,omitempty"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	// InitialSync progress while Initializing (and the last run's totals).
	InitRowsDone  int64 `json:"init_rows_done"`
	InitRowsTotal int64 `json:"init_rows_total"`
	InitErrors    int64 `json:"init_errors"`
	CatchUpErrors int64 `json:"catch_up_errors"`
	// Queue is the durable queue of a Paused, Initializing or Resuming map.
	QueueDepth  int64   `json:"queue_depth"`
	QueueBytes  int64   `json:"queue_bytes"`
	QueueAgeSec float64 `json:"queue_age_seconds"`
	// Applied counts changes applied by live sync since the engine started,
	// per direction ("erp->crm").
	Applied map[string]int64 `json:"applied,omitempty"`
	// Lag per side, where the connector reports it.
	Lag []SideLag `json:"lag,omitempty"`
	// Problems are validation errors that keep the map from starting.
	Problems []string `json:"problems,omitempty"`
	// Condition, when set, is why the map needs a look beside its status:
	// its stream is stalled (kind "stalled", clears by itself) or the
	// engine stopped it (kind "stopped", until it is run again). A Running
	// map with a condition is not syncing.
	Condition *Condition `json:"condition,omitempty"`
}

// Condition is a stall or an engine stop of a map, with its code and cause.
type Condition struct {
	Kind    string    `json:"kind"` // "stalled" or "stopped"
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Side    string    `json:"side,omitempty"` // the side whose stream is stalled
	Since   time.Time `json:"since"`
}

// SideLag is the capture lag of one side.
type SideLag struct {
	Side        string  `json:"side"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	RetainedLog int64   `json:"retained_log_bytes"`
}

// RunOptions are the options of the Run action.
type RunOptions struct {
	WithRelated     bool   `json:"with_related"`
	SkipInitialSync bool   `json:"skip_initial_sync"`
	Master          string `json:"master,omitempty"` // side name, "left" or "right"; empty keeps the map's
	Actor           string `json:"actor,omitempty"`
}

// ActionResult is the answer to Run, Pause and Stop.
type ActionResult struct {
	Map    string `json:"map"`
	Status Status `json:"status"`
	// Related are the maps this map depends on that are not yet in the
	// target status, in dependency order. With --with-related they were
	// acted on (Acted lists them with the map itself, in order); without,
	// they are recommended.
	Related []string `json:"related,omitempty"`
	Acted   []string `json:"acted,omitempty"`
}

// RowError is one failed row of an initial sync or a catch-up.
type RowError struct {
	ID        int64     `json:"id"`
	Map       string    `json:"map"`
	Direction string    `json:"direction"` // "erp->crm"
	Key       string    `json:"key"`       // the integration key, as JSON
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	Time      time.Time `json:"time"`
	// Changes counts the queued changes parked under this error (catch-up
	// errors only: later changes to the same key wait behind it).
	Changes int `json:"changes,omitempty"`
}

// Activity is one entry of a map's activity log.
type Activity struct {
	ID      int64     `json:"id"`
	Map     string    `json:"map"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"` // "cli", "api", "engine", "demo"
	Kind    string    `json:"kind"`  // "status", "run", "error", "conflict", "warning"
	Message string    `json:"message"`
}

// RetryResult reports a retry of catch-up errors or an initial sync rerun.
type RetryResult struct {
	Retried   int `json:"retried"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// Package wire holds the JSON bodies of the engine's HTTP API. The server
// (internal/api over internal/engine) encodes them and the clients (the
// CLI, the web workspace, tests) decode them, without linking the engine.
// docs/API.md documents each body; a field is only ever added, never
// renamed, so older clients keep working.
package wire

import "time"

// Status is a map's lifecycle status.
type Status string

// The five statuses of dual-write's table map lifecycle.
const (
	NotRunning   Status = "Not running"
	Initializing Status = "Initializing"
	Running      Status = "Running"
	Paused       Status = "Paused"
	Resuming     Status = "Resuming"
)

// Action is a lifecycle action a user can take.
type Action string

// The lifecycle actions. Which is allowed in which status is the engine's
// lifecycle table (internal/engine/lifecycle.go); MapView.Actions carries
// the allowed ones of each map.
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
	// StartFailures counts the failed attempts in a row to take the map
	// from Initializing or Resuming to Running (a failure that is not one
	// row's fault: a side unreachable, a table missing). LastStartError is
	// the last one. When they keep failing, stop the map and run it again,
	// with skip_initial_sync if the initial sync cannot succeed.
	StartFailures  int    `json:"start_failures,omitempty"`
	LastStartError string `json:"last_start_error,omitempty"`
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

// Condition kinds.
const (
	// ConditionStalled: the map's stream cannot progress; it clears by
	// itself when the cause goes.
	ConditionStalled = "stalled"
	// ConditionStopped: the engine stopped the map; it needs a person.
	ConditionStopped = "stopped"
)

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
	ID        int64  `json:"id"`
	Map       string `json:"map"`
	Direction string `json:"direction"` // "erp->crm"
	// Key is the integration key as the engine stores it (tagged JSON
	// values); KeyText is the same key for people: "usmf / C00012".
	Key     string    `json:"key"`
	KeyText string    `json:"key_text"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// Changes counts the queued changes parked under this error (catch-up
	// errors only: later changes to the same key wait behind it).
	Changes int `json:"changes,omitempty"`
}

// Activity is one entry of a map's activity log.
type Activity struct {
	ID   int64     `json:"id"`
	Map  string    `json:"map"`
	Time time.Time `json:"time"`
	// Actor is who acted: "engine", "demo", or for a request the token
	// that made it ("operator token 1a2b3c4d"), prefixed by the client
	// when it names itself ("cli, operator token 1a2b3c4d").
	Actor   string `json:"actor"`
	Kind    string `json:"kind"` // "status", "run", "error", "conflict", "warning"
	Message string `json:"message"`
}

// RetryResult reports a retry of catch-up errors or an initial sync rerun.
type RetryResult struct {
	Retried   int `json:"retried"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// Health is the body of GET /api/v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// MapList is the body of GET /api/v1/maps.
type MapList struct {
	Maps []MapView `json:"maps"`
}

// ErrorList is the body of GET /api/v1/maps/{name}/errors and
// /catchup-errors. Total counts every error; Errors holds at most the
// requested limit of them.
type ErrorList struct {
	Errors []RowError `json:"errors"`
	Total  int        `json:"total"`
}

// ActivityList is the body of GET /api/v1/maps/{name}/activity, newest first
// as the engine returns it.
type ActivityList struct {
	Activity []Activity `json:"activity"`
}

// PauseRequest is the body of POST /api/v1/maps/{name}/pause.
type PauseRequest struct {
	WithRelated bool `json:"with_related"`
}

// Selection is the body of the catch-up retry and discard routes: either
// IDs or All, never both and never neither, so that an empty body can never
// act on every error by accident.
type Selection struct {
	IDs []int64 `json:"ids,omitempty"`
	All bool    `json:"all,omitempty"`
}

// DiscardResult is the body answering a discard.
type DiscardResult struct {
	Discarded int `json:"discarded"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a coded error, as in internal/problem.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ActorHeader names the client in the activity log ("cli"); the token
// that authenticated the request is recorded with it.
const ActorHeader = "X-Dualwrite-Actor"

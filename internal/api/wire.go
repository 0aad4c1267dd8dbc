package api

import (
	"github.com/dualwrite/dualwrite/internal/engine"
)

// The wire types below are the JSON bodies of the API that are not engine
// view types. The CLI decodes them too, so server and client stay in step.

// Health is the body of GET /api/v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// MapList is the body of GET /api/v1/maps.
type MapList struct {
	Maps []engine.MapView `json:"maps"`
}

// ErrorList is the body of GET /api/v1/maps/{name}/errors and
// /catchup-errors. Total counts every error; Errors holds at most the
// requested limit of them.
type ErrorList struct {
	Errors []engine.RowError `json:"errors"`
	Total  int               `json:"total"`
}

// ActivityList is the body of GET /api/v1/maps/{name}/activity, newest first
// as the engine returns it.
type ActivityList struct {
	Activity []engine.Activity `json:"activity"`
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

// ActorHeader names the actor recorded in the activity log for an action.
// Without it the actor is "api"; the CLI sends "cli".
const ActorHeader = "X-Dualwrite-Actor"

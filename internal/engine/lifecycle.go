package engine

import (
	"slices"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// lifecycle is the one table of the lifecycle: for each of the five
// statuses, the user actions allowed in it and the status each leads to.
// The engine, the API's test fake (internal/api/apitest), the web
// workspace and the docs' examples all read it through Actions and Next.
//
// Initializing and Resuming end by themselves (engine transitions to
// Running); stopping them aborts the initial sync or the catch-up and the
// map returns to Not running. A Paused map cannot stop: its queue holds
// changes nobody has applied yet; run it first.
var lifecycle = map[Status][]edge{
	NotRunning:   {{ActionRun, Initializing}},
	Initializing: {{ActionStop, NotRunning}},
	Running:      {{ActionStop, NotRunning}, {ActionPause, Paused}},
	Paused:       {{ActionRun, Resuming}},
	Resuming:     {{ActionStop, NotRunning}},
}

type edge struct {
	action Action
	to     Status
}

// Statuses lists the five statuses in lifecycle order.
func Statuses() []Status {
	return []Status{NotRunning, Initializing, Running, Paused, Resuming}
}

// Actions returns the actions allowed in a status, in the table's order.
func Actions(s Status) []Action {
	out := []Action{}
	for _, e := range lifecycle[s] {
		out = append(out, e.action)
	}
	return out
}

// Next returns the status action a leads to from status s of map name, or
// a DW2001 error naming the current status and the allowed actions.
func Next(name string, s Status, a Action) (Status, error) {
	i := slices.IndexFunc(lifecycle[s], func(e edge) bool { return e.action == a })
	if i >= 0 {
		return lifecycle[s][i].to, nil
	}
	names := make([]string, 0, len(lifecycle[s]))
	for _, x := range Actions(s) {
		names = append(names, string(x))
	}
	allowedText := "none"
	if len(names) > 0 {
		allowedText = strings.Join(names, ", ")
	}
	return "", problem.New(problem.InvalidAction, "cannot %s map %s: it is %s; allowed actions: %s", a, name, s, allowedText)
}

// ParseStatus maps a persisted status back; unknown text is Not running.
func ParseStatus(s string) Status {
	switch Status(s) {
	case Initializing, Running, Paused, Resuming:
		return Status(s)
	}
	return NotRunning
}

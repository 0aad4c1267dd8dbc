package engine

import (
	"slices"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// The lifecycle has exactly five statuses. A user action moves a map only
// along these edges; Initializing and Resuming end by themselves (engine
// transitions), never by a user action.
var allowed = map[Status][]Action{
	NotRunning:   {ActionRun},
	Initializing: nil,
	Running:      {ActionStop, ActionPause},
	Paused:       {ActionRun},
	Resuming:     nil,
}

// Actions returns the actions allowed in a status.
func Actions(s Status) []Action {
	a := allowed[s]
	if a == nil {
		return []Action{}
	}
	return slices.Clone(a)
}

// next returns the status an action leads to from s, or a DW2001 error
// naming the current status and the allowed actions.
func next(name string, s Status, a Action) (Status, error) {
	if !slices.Contains(allowed[s], a) {
		names := make([]string, 0, len(allowed[s]))
		for _, x := range allowed[s] {
			names = append(names, string(x))
		}
		allowedText := "none until it finishes"
		if len(names) > 0 {
			allowedText = strings.Join(names, ", ")
		}
		return "", problem.New(problem.InvalidAction, "cannot %s map %s: it is %s; allowed actions: %s", a, name, s, allowedText)
	}
	switch {
	case s == NotRunning && a == ActionRun:
		return Initializing, nil
	case s == Paused && a == ActionRun:
		return Resuming, nil
	case s == Running && a == ActionPause:
		return Paused, nil
	case s == Running && a == ActionStop:
		return NotRunning, nil
	}
	return "", problem.New(problem.InvalidAction, "cannot %s map %s from %s", a, name, s)
}

// ParseStatus maps a persisted status back; unknown text is Not running.
func ParseStatus(s string) Status {
	switch Status(s) {
	case Initializing, Running, Paused, Resuming:
		return Status(s)
	}
	return NotRunning
}

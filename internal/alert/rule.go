package alert

import (
	"fmt"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// input is what one evaluation of a map's rules reads.
type input struct {
	view      wire.MapView
	activity  []wire.Activity // newest first; nil when no rule needs it
	now       time.Time
	retention time.Duration
}

func needsActivity(rules []config.AlertRule) bool {
	for _, r := range rules {
		switch r.When {
		case config.AlertErrors, config.AlertStream, config.AlertInitialSync:
			return true
		}
	}
	return false
}

// evaluate reports whether a rule's condition holds and describes what was
// seen. It is pure: the same input gives the same answer.
func evaluate(r config.AlertRule, in *input) (bool, string) {
	v := in.view
	switch r.When {
	case config.AlertErrors:
		n := errorsSince(in.activity, in.now.Add(-r.Within.D()))
		return n >= r.Errors, fmt.Sprintf("%d errors in the last %s", n, r.Within)
	case config.AlertLag:
		s, side := maxLag(v)
		lag := time.Duration(s * float64(time.Second)).Round(time.Second)
		return lag > r.LagAbove.D(), fmt.Sprintf("%s lags %s behind", side, lag)
	case config.AlertQueueAge:
		age := time.Duration(v.QueueAgeSec * float64(time.Second)).Round(time.Second)
		limit := in.retention * time.Duration(r.RetentionPercent) / 100
		return v.QueueDepth > 0 && age > limit,
			fmt.Sprintf("the oldest of %d queued changes is %s old; retention %s drops it at that age", v.QueueDepth, age, in.retention)
	case config.AlertRetainedLog:
		var most int64
		side := ""
		for _, l := range v.Lag {
			if l.RetainedLog > most {
				most, side = l.RetainedLog, l.Side
			}
		}
		return most > r.RetainedLogAbove, fmt.Sprintf("%s retains %s of log for capture", nonEmpty(side, "no side"), config.FormatBytes(most))
	case config.AlertStream:
		return streamFailing(r, in)
	case config.AlertInitialSync:
		if v.Status != wire.Initializing && v.InitErrors > 0 {
			return true, fmt.Sprintf("the initial sync ended with %d failed rows; see Initial sync details and rerun them", v.InitErrors)
		}
		if since, ok := failingSince(in.activity); ok && v.Status == wire.Initializing && v.StartFailures > 0 {
			return true, fmt.Sprintf("the initial sync has been failing since %s (%d attempts): %s", since.UTC().Format(time.RFC3339), v.StartFailures, nonEmpty(v.LastStartError, "see the activity log"))
		}
		return false, "the initial sync has not failed"
	}
	return false, "unknown rule " + r.When
}

// errorsSince counts the error entries of the activity log after t.
func errorsSince(acts []wire.Activity, t time.Time) int {
	n := 0
	for _, a := range acts {
		if a.Time.Before(t) {
			break // newest first
		}
		if a.Kind == "error" {
			n++
		}
	}
	return n
}

// failingSince reports whether the latest activity entries of the map are
// engine errors, and since when: the map's bring-up (initial sync or
// catch-up) keeps failing and is retried without progress in between.
func failingSince(acts []wire.Activity) (time.Time, bool) {
	var since time.Time
	for _, a := range acts {
		if a.Kind != "error" || a.Actor != "engine" {
			break
		}
		since = a.Time
	}
	return since, !since.IsZero()
}

// streamFailing: a map the engine cannot bring up (its view counts the
// failed attempts in a row, or its activity log shows only errors since),
// or a running stream whose capture lag has grown past the limit, has
// stalled.
func streamFailing(r config.AlertRule, in *input) (bool, string) {
	v := in.view
	limit := r.StalledAfter.D()
	if c := v.Condition; c != nil && in.now.Sub(c.Since) >= limit {
		// The engine says the map's stream is stalled, or it stopped the
		// map: that is the cause, whatever the status.
		what := "stalled"
		if c.Kind == wire.ConditionStopped {
			what = "stopped by the engine"
		}
		return true, fmt.Sprintf("%s since %s: %s %s", what, c.Since.UTC().Format(time.RFC3339), c.Code, c.Message)
	}
	switch v.Status {
	case wire.Initializing, wire.Resuming:
		if since, ok := failingSince(in.activity); ok && in.now.Sub(since) >= limit {
			return true, fmt.Sprintf("%s has been failing for %s (%d attempts): %s", v.Status, in.now.Sub(since).Round(time.Second), v.StartFailures, nonEmpty(v.LastStartError, "see the activity log"))
		}
	case wire.Running:
		if s, side := maxLag(v); time.Duration(s*float64(time.Second)) >= limit {
			return true, fmt.Sprintf("the stream from %s has made no progress for %s", side, time.Duration(s*float64(time.Second)).Round(time.Second))
		}
	}
	return false, "the stream progresses"
}

func maxLag(v wire.MapView) (float64, string) {
	most, side := 0.0, "no side"
	for _, l := range v.Lag {
		if l.Seconds > most || side == "no side" {
			most, side = l.Seconds, l.Side
		}
	}
	return most, side
}

func nonEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

package web

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// activityKinds are the kinds the activity filter offers, as the engine and
// the alert watcher write them.
var activityKinds = []string{"status", "run", "error", "conflict", "warning", "alert"}

// activityLimit bounds how many entries one page or download reads.
const activityLimit = 10000

// activityFilter selects activity entries by kind and time.
type activityFilter struct {
	Kind     string
	From, To time.Time
	// FromText and ToText are the form's values, echoed back.
	FromText, ToText string
}

// timeInput is the format of <input type="datetime-local">, read as UTC.
const timeInput = "2006-01-02T15:04"

func parseFilter(r *http.Request) (activityFilter, error) {
	q := r.URL.Query()
	f := activityFilter{Kind: q.Get("kind"), FromText: q.Get("from"), ToText: q.Get("to")}
	if f.Kind != "" && !slices.Contains(activityKinds, f.Kind) {
		return f, problem.New(problem.BadRequest, "kind %q is not one of the activity kinds", f.Kind)
	}
	parse := func(s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		for _, layout := range []string{timeInput, timeInput + ":05", time.RFC3339} {
			if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
				return t, nil
			}
		}
		return time.Time{}, problem.New(problem.BadRequest, "time %q is not like 2026-12-04T21:30 (UTC)", s)
	}
	var err error
	if f.From, err = parse(f.FromText); err != nil {
		return f, err
	}
	if f.To, err = parse(f.ToText); err != nil {
		return f, err
	}
	return f, nil
}

func (f activityFilter) keep(a wire.Activity) bool {
	if f.Kind != "" && a.Kind != f.Kind {
		return false
	}
	if !f.From.IsZero() && a.Time.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !a.Time.Before(f.To) {
		return false
	}
	return true
}

// activity returns the map's activity entries that pass the filter,
// newest first.
func (s *Server) activity(r *http.Request, name string, f activityFilter) ([]wire.Activity, error) {
	acts, err := s.o.Engine.Activity(r.Context(), name, activityLimit)
	if err != nil {
		return nil, err
	}
	out := acts[:0]
	for _, a := range acts {
		if f.keep(a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *Server) activityDownload(w http.ResponseWriter, r *http.Request, ext string) ([]wire.Activity, bool) {
	name := r.PathValue("name")
	f, err := parseFilter(r)
	var acts []wire.Activity
	if err == nil {
		acts, err = s.activity(r, name, f)
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`-activity.`+ext+`"`)
	w.Header().Set("Cache-Control", "no-store")
	return acts, true
}

func (s *Server) activityCSV(w http.ResponseWriter, r *http.Request) {
	acts, ok := s.activityDownload(w, r, "csv")
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "time", "map", "actor", "kind", "message"})
	for _, a := range acts {
		_ = cw.Write([]string{strconv.FormatInt(a.ID, 10), a.Time.UTC().Format(time.RFC3339Nano), a.Map, a.Actor, a.Kind, a.Message})
	}
	cw.Flush()
}

func (s *Server) activityJSON(w http.ResponseWriter, r *http.Request) {
	acts, ok := s.activityDownload(w, r, "json")
	if !ok {
		return
	}
	if acts == nil {
		acts = []wire.Activity{}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(struct {
		Activity []wire.Activity `json:"activity"`
	}{acts})
}

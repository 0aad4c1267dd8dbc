package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"key":       wire.KeyText,
		"percent":   percent,
		"ago":       s.ago,
		"seconds":   seconds,
		"bytes":     config.FormatBytes,
		"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"allows":    allows,
		"sparkline": s.sparkline,
		"maxlag":    maxLagSeconds,
		"statusID":  func(st wire.Status) string { return strings.ReplaceAll(strings.ToLower(string(st)), " ", "-") },
		"title":     actionTitle,
		"join":      strings.Join,
		"has":       slices.Contains[[]string],
		"dur":       func(d config.Duration) string { return d.String() },
		"htmx":      func() string { return htmxVersion },
		"ruleRow":   newRuleRow,
		"actions":   func(v wire.MapView, d pageData) actionsData { return actionsData{V: v, P: d} },
		"emptyRule": func() config.AlertRule { return config.AlertRule{} },
	}
}

// percent is the initial sync's progress, 0 to 100.
func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(min(100, done*100/total))
}

func (s *Server) ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := s.o.Now().Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.UTC().Format("2006-01-02")
}

// seconds renders a duration in seconds compactly: 0s, 42s, 3m10s, 2h5m.
func seconds(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return config.Duration(d).String()
}

func maxLagSeconds(v wire.MapView) float64 {
	most := 0.0
	for _, l := range v.Lag {
		most = max(most, l.Seconds)
	}
	return most
}

func allows(v wire.MapView, a string) bool {
	return slices.Contains(v.Actions, wire.Action(a))
}

func actionTitle(a wire.Action) string {
	switch a {
	case wire.ActionRun:
		return "Run"
	case wire.ActionPause:
		return "Pause"
	case wire.ActionStop:
		return "Stop"
	}
	return strings.ToUpper(string(a[:1])) + string(a[1:])
}

// statusOf maps an engine error to an HTTP status, as the API does.
func statusOf(err error) int {
	var pe *problem.Error
	if !errors.As(err, &pe) {
		return http.StatusInternalServerError
	}
	switch pe.Code {
	case problem.MapNotFound:
		return http.StatusNotFound
	case problem.InvalidAction, problem.MapInvalid:
		return http.StatusConflict
	case problem.BadRequest, problem.ConfigInvalid:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// ruleRow is one row of the alert rules form.
type ruleRow struct {
	D      pageData
	I      int
	Rule   config.AlertRule
	Firing bool
	Detail string
	New    bool // the empty row that adds a rule
}

func newRuleRow(d pageData, i int, r config.AlertRule, firing bool, detail string) ruleRow {
	return ruleRow{D: d, I: i, Rule: r, Firing: firing, Detail: detail, New: i == len(d.Rules)}
}

// actionsData is a map with the page it is shown on, for its action forms.
type actionsData struct {
	V wire.MapView
	P pageData
}

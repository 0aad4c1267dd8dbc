package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// The actions answer with a redirect (303) to the page they came from,
// carrying the outcome in ?msg= or ?err=, so that reloading the page does
// not repeat the action.

func redirect(w http.ResponseWriter, r *http.Request, path, msg string, err error) {
	q := url.Values{}
	if err != nil {
		q.Set("err", err.Error())
	} else if msg != "" {
		q.Set("msg", msg)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	if len(q) > 0 {
		path += sep + q.Encode()
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// back returns the page a form was sent from (its Referer, when it is
// this server's page), without the last outcome, else fallback.
func back(r *http.Request, fallback string) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host || !strings.HasPrefix(u.Path, "/") {
		return fallback
	}
	q := u.Query()
	q.Del("msg")
	q.Del("err")
	if len(q) == 0 {
		return u.Path
	}
	return u.Path + "?" + q.Encode()
}

func mapPath(name, tab string) string {
	p := "/maps/" + url.PathEscape(name)
	if tab != "" {
		p += "?tab=" + tab
	}
	return p
}

// runPost runs the ticked maps in the order given, each with its master.
// Every map is run on its own (not "with related"), so any subset of the
// related maps can be run; the engine's worker takes them in this order.
func (s *Server) runPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, problem.New(problem.BadRequest, "bad form: %v", err))
		return
	}
	type pick struct {
		name   string
		master string
		order  int
	}
	var picks []pick
	for _, n := range r.PostForm["map"] {
		o, err := strconv.Atoi(r.PostFormValue("order-" + n))
		if err != nil {
			s.fail(w, r, problem.New(problem.BadRequest, "order of map %s must be a whole number, got %q", n, r.PostFormValue("order-"+n)))
			return
		}
		picks = append(picks, pick{name: n, master: r.PostFormValue("master-" + n), order: o})
	}
	if len(picks) == 0 {
		redirect(w, r, "/maps/"+url.PathEscape(name)+"/run", "", problem.New(problem.BadRequest, "no map is ticked; tick the maps to run"))
		return
	}
	slices.SortStableFunc(picks, func(a, b pick) int { return cmp.Compare(a.order, b.order) })
	skip := r.PostFormValue("initial_sync") == ""
	var ran []string
	for _, p := range picks {
		_, err := s.o.Engine.Run(r.Context(), p.name, wire.RunOptions{Master: p.master, SkipInitialSync: skip, Actor: actor(r)})
		if err != nil {
			msg := "ran nothing"
			if len(ran) > 0 {
				msg = "ran " + strings.Join(ran, ", ")
			}
			redirect(w, r, "/", "", fmt.Errorf("%s; then %s: %w", msg, p.name, err))
			return
		}
		ran = append(ran, p.name)
	}
	redirect(w, r, "/", "run: "+strings.Join(ran, ", "), nil)
}

func (s *Server) pausePost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, err := s.o.Engine.Pause(r.Context(), name, r.FormValue("with_related") != "", actor(r))
	msg := name + " paused"
	if len(res.Acted) > 1 {
		msg = "paused " + strings.Join(res.Acted, ", ")
	}
	redirect(w, r, back(r, "/"), msg, err)
}

func (s *Server) stopPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	_, err := s.o.Engine.Stop(r.Context(), name, actor(r))
	redirect(w, r, back(r, "/"), name+" stopped", err)
}

// rerunPost retries only the failed rows of the initial sync.
func (s *Server) rerunPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, err := s.o.Engine.Rerun(r.Context(), name, actor(r))
	redirect(w, r, mapPath(name, "initial"), fmt.Sprintf("rerun of failed rows: %d retried, %d succeeded, %d failed", res.Retried, res.Succeeded, res.Failed), err)
}

// fullRerunPost copies every row again: a running map is stopped, then
// run with its initial sync, through the engine's lifecycle.
func (s *Server) fullRerunPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	v, err := s.o.Engine.Map(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if allows(v, string(wire.ActionStop)) {
		if _, err := s.o.Engine.Stop(ctx, name, actor(r)); err != nil {
			redirect(w, r, mapPath(name, "initial"), "", err)
			return
		}
	}
	_, err = s.o.Engine.Run(ctx, name, wire.RunOptions{Actor: actor(r)})
	redirect(w, r, mapPath(name, "initial"), "full initial sync started", err)
}

// skipInitialPost gives up a map's initial sync (one that keeps failing,
// or that is not wanted after all) and turns on live sync, as dual-write's
// "Skip initial sync": the initial sync is aborted (stop) and the map run
// again without it.
func (s *Server) skipInitialPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	v, err := s.o.Engine.Map(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v.Status != wire.Initializing || !allows(v, string(wire.ActionStop)) {
		redirect(w, r, mapPath(name, "initial"), "", problem.New(problem.InvalidAction, "cannot skip the initial sync of map %s: it is %s, not Initializing", name, v.Status))
		return
	}
	if _, err := s.o.Engine.Stop(ctx, name, actor(r)); err != nil {
		redirect(w, r, mapPath(name, "initial"), "", err)
		return
	}
	_, err = s.o.Engine.Run(ctx, name, wire.RunOptions{SkipInitialSync: true, Actor: actor(r)})
	redirect(w, r, mapPath(name, "initial"), "initial sync skipped; live sync is on", err)
}

// catchUpPost retries or discards the selected catch-up errors, or all.
func (s *Server) catchUpPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, problem.New(problem.BadRequest, "bad form: %v", err))
		return
	}
	op, all := r.PostFormValue("op"), r.PostFormValue("all") != ""
	var ids []int64
	for _, v := range r.PostForm["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			s.fail(w, r, problem.New(problem.BadRequest, "error id %q is not valid", v))
			return
		}
		ids = append(ids, id)
	}
	back := mapPath(name, "catchup")
	if !all && len(ids) == 0 {
		redirect(w, r, back, "", problem.New(problem.BadRequest, "no error is selected; tick the errors, or use the buttons for all"))
		return
	}
	if all {
		ids = nil // the engine's "every error"
	}
	switch op {
	case "retry":
		res, err := s.o.Engine.Retry(r.Context(), name, ids, actor(r))
		redirect(w, r, back, fmt.Sprintf("retried %d: %d succeeded, %d failed", res.Retried, res.Succeeded, res.Failed), err)
	case "discard":
		n, err := s.o.Engine.Discard(r.Context(), name, ids, actor(r))
		redirect(w, r, back, fmt.Sprintf("discarded %d", n), err)
	default:
		s.fail(w, r, problem.New(problem.BadRequest, "op %q is not retry or discard", op))
	}
}

// alertsPost replaces the map's alert rules with the ones in the form:
// the rows kept, plus a new one when its kind is chosen.
func (s *Server) alertsPost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	back := mapPath(name, "alerts")
	if s.o.Alerts == nil {
		redirect(w, r, back, "", problem.New(problem.BadRequest, "alert rules are read-only here"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, problem.New(problem.BadRequest, "bad form: %v", err))
		return
	}
	rules, err := parseRules(r)
	if err == nil {
		err = s.o.Alerts.SetRules(r.Context(), name, actor(r), rules)
	}
	redirect(w, r, back, fmt.Sprintf("alert rules saved (%d)", len(rules)), err)
}

// parseRules reads rule rows "r0-when", "r0-errors", ... up to "rows".
func parseRules(r *http.Request) ([]config.AlertRule, error) {
	n, _ := strconv.Atoi(r.PostFormValue("rows"))
	var out []config.AlertRule
	for i := 0; i <= n && i < 100; i++ {
		f := func(k string) string { return strings.TrimSpace(r.PostFormValue(fmt.Sprintf("r%d-%s", i, k))) }
		if f("when") == "" || f("remove") != "" {
			continue
		}
		rule := config.AlertRule{When: f("when"), Action: f("action")}
		var err error
		num := func(k string, dst *int) {
			if v := f(k); v != "" && err == nil {
				if *dst, err = strconv.Atoi(v); err != nil {
					err = problem.New(problem.BadRequest, "rule %d: %s must be a whole number, got %q", i+1, k, v)
				}
			}
		}
		dur := func(k string, dst *config.Duration) {
			if v := f(k); v != "" && err == nil {
				d, perr := time.ParseDuration(v)
				if perr != nil {
					err = problem.New(problem.BadRequest, "rule %d: %s must be a duration such as 15m, got %q", i+1, k, v)
				}
				*dst = config.Duration(d)
			}
		}
		num("errors", &rule.Errors)
		dur("within", &rule.Within)
		dur("lag_above", &rule.LagAbove)
		num("retention_percent", &rule.RetentionPercent)
		dur("stalled_after", &rule.StalledAfter)
		if v := f("retained_log_above"); v != "" && err == nil {
			if rule.RetainedLogAbove, err = strconv.ParseInt(v, 10, 64); err != nil {
				err = problem.New(problem.BadRequest, "rule %d: retained_log_above must be a number of bytes, got %q", i+1, v)
			}
		}
		if err != nil {
			return nil, err
		}
		rule.Notify = r.PostForm[fmt.Sprintf("r%d-notify", i)]
		out = append(out, rule)
	}
	return out, nil
}

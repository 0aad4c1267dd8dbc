package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/dualwrite/dualwrite/internal/alert"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// pageData is what every page and fragment template receives.
type pageData struct {
	Title   string
	Version string
	Flash   string // the outcome of the last action, from ?msg=
	Error   string
	Left    string // side names
	Right   string
	// CSRF goes into every form of a page served to a session; Who names
	// the signed-in role; CanAct is false for the viewer role, which sees
	// no action buttons (the server refuses its actions anyway).
	CSRF   string
	Who    string
	CanAct bool

	Maps []wire.MapView // the list page
	Map  wire.MapView   // the map page and run dialog
	Cfg  *config.Map
	Tab  string
	Tabs []tab

	InitErrors    []wire.RowError
	CatchUpErrors []wire.RowError
	Activity      []wire.Activity
	Filter        activityFilter
	Kinds         []string
	Rules         []alert.RuleStatus
	RuleKinds     []string
	RuleActions   []string
	Channels      []string
	Editable      bool
	Queue         queueView
	Run           []runRow
}

type tab struct {
	ID, Title string
	Selected  bool
}

var tabs = []tab{
	{ID: "initial", Title: "Initial sync details"},
	{ID: "catchup", Title: "Catch-up errors"},
	{ID: "activity", Title: "Activity log"},
	{ID: "alerts", Title: "Alert settings"},
	{ID: "queue", Title: "Queue"},
	{ID: "columns", Title: "Columns and lookups"},
}

// queueView is the queue tab: depth, age, and the time left before
// retention drops the oldest queued change.
type queueView struct {
	Depth     int64
	Bytes     int64
	Age       time.Duration
	Retention time.Duration
	WarnAt    time.Duration
	Left      time.Duration
	Share     int // age as a percentage of retention
}

func (s *Server) base(r *http.Request, title string) pageData {
	d := pageData{
		Title:   title,
		Version: s.o.Version,
		Flash:   r.URL.Query().Get("msg"),
		Error:   r.URL.Query().Get("err"),
		Left:    s.o.Config.Link.Left.Name,
		Right:   s.o.Config.Link.Right.Name,
		CSRF:    auth.CSRFToken(r.Context()),
		CanAct:  true,
	}
	if id, ok := auth.FromContext(r.Context()); ok {
		d.Who = string(id.Role)
		d.CanAct = id.CanAct()
	}
	return d
}

func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	maps, err := s.o.Engine.Maps(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := s.base(r, "Table maps")
	d.Maps = maps
	s.render(w, r, "list", d)
}

// listRows is the list's table body alone, polled by htmx.
func (s *Server) listRows(w http.ResponseWriter, r *http.Request) {
	maps, err := s.o.Engine.Maps(r.Context())
	if err != nil {
		s.fragmentFailed(w, r, err)
		return
	}
	d := s.base(r, "")
	d.Maps = maps
	s.render(w, r, "rows", d)
}

// fragmentFailed answers a poll that could not be served with 204, which
// htmx does not swap: the page keeps its last state instead of an error
// page inside a table, and the next poll tries again.
func (s *Server) fragmentFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("web fragment failed", "path", r.URL.Path, "err", err)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) mapHeader(w http.ResponseWriter, r *http.Request) {
	v, err := s.o.Engine.Map(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fragmentFailed(w, r, err)
		return
	}
	d := s.base(r, "")
	d.Map = v
	s.render(w, r, "header", d)
}

func (s *Server) mapPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	v, err := s.o.Engine.Map(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := s.base(r, v.Name)
	d.Map = v
	d.Cfg = s.o.Config.MapByName(name)
	d.Tab = r.URL.Query().Get("tab")
	if !slices.ContainsFunc(tabs, func(t tab) bool { return t.ID == d.Tab }) {
		d.Tab = "initial"
	}
	for _, t := range tabs {
		t.Selected = t.ID == d.Tab
		d.Tabs = append(d.Tabs, t)
	}
	switch d.Tab {
	case "initial":
		d.InitErrors, err = s.o.Engine.InitErrors(ctx, name)
	case "catchup":
		d.CatchUpErrors, err = s.o.Engine.CatchUpErrors(ctx, name)
	case "activity":
		d.Filter, err = parseFilter(r)
		if err == nil {
			d.Activity, err = s.activity(r, name, d.Filter)
		}
		d.Kinds = activityKinds
	case "alerts":
		s.alertData(&d)
	case "queue":
		d.Queue = s.queueView(v)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "map", d)
}

func (s *Server) alertData(d *pageData) {
	d.RuleKinds = config.AlertKinds
	d.RuleActions = config.AlertActions
	if s.o.Alerts == nil {
		for _, r := range d.Cfg.Alerts {
			d.Rules = append(d.Rules, alert.RuleStatus{Rule: r})
		}
		d.Channels = s.o.Config.Notify.ChannelNames()
		return
	}
	d.Editable = true
	d.Rules = s.o.Alerts.Rules(d.Map.Name)
	d.Channels = s.o.Alerts.Channels()
}

func (s *Server) queueView(v wire.MapView) queueView {
	q := queueView{
		Depth:     v.QueueDepth,
		Bytes:     v.QueueBytes,
		Age:       time.Duration(v.QueueAgeSec * float64(time.Second)).Round(time.Second),
		Retention: s.o.Config.Engine.QueueRetention.D(),
		WarnAt:    s.o.Config.Engine.QueueWarnAt.D(),
	}
	if q.Depth > 0 {
		q.Left = max(0, q.Retention-q.Age)
		if q.Retention > 0 {
			q.Share = int(min(100, q.Age*100/q.Retention))
		}
	}
	return q
}

// runRow is one map of the run dialog.
type runRow struct {
	View    wire.MapView
	Self    bool // the map the dialog was opened for
	CanRun  bool
	Checked bool
	Master  string // side name
	Order   int
}

// runDialog lists the map and the maps it depends on, transitively, in
// the engine's dependency order, each with a checkbox, a master and a
// place in the run order.
func (s *Server) runDialog(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	views, err := s.o.Engine.Maps(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(views, func(v wire.MapView) bool { return v.Name == name })
	if i < 0 {
		_, err := s.o.Engine.Map(ctx, name) // the engine's not-found error
		s.fail(w, r, err)
		return
	}
	related := relatedOf(views, name)
	d := s.base(r, "Run "+name)
	d.Map = views[i]
	order := 0
	for _, v := range views { // views are in dependency order
		if v.Name != name && !related[v.Name] {
			continue
		}
		order++
		can := allows(v, string(wire.ActionRun))
		d.Run = append(d.Run, runRow{View: v, Self: v.Name == name, CanRun: can, Checked: can, Master: v.Master, Order: order})
	}
	s.render(w, r, "run", d)
}

// relatedOf returns the maps name depends on, transitively.
func relatedOf(views []wire.MapView, name string) map[string]bool {
	deps := map[string][]string{}
	for _, v := range views {
		deps[v.Name] = v.DependsOn
	}
	out := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for _, d := range deps[n] {
			if d != name && !out[d] {
				out[d] = true
				walk(d)
			}
		}
	}
	walk(name)
	return out
}

package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Notify holds the channels alerts are sent to. Rules name channels; a rule
// that names none uses every channel.
type Notify struct {
	Webhooks []Webhook `yaml:"webhooks"`
	Email    []Email   `yaml:"email"`
	Pos      Pos       `yaml:"-"`
}

// Webhook is an HTTP endpoint that receives one POST per alert and per
// clearing.
type Webhook struct {
	Name string `yaml:"name"`
	// URL receives the POST. ${VAR} is expanded from the environment.
	URL string `yaml:"url"`
	// Format of the JSON body: "json" (the alert's fields, default) or
	// "slack" ({"text": ...}, accepted by Slack and compatible incoming
	// webhooks).
	Format string `yaml:"format"`
	Pos    Pos    `yaml:"-"`
}

// Webhook body formats.
const (
	WebhookJSON  = "json"
	WebhookSlack = "slack"
)

// Email sends alerts as e-mail through an SMTP server.
type Email struct {
	Name string `yaml:"name"`
	// SMTP is the server's host:port. STARTTLS is used when the server
	// offers it.
	SMTP string   `yaml:"smtp"`
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	// Username and Password authenticate (PLAIN) when set. ${VAR} is
	// expanded from the environment in the password.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Pos      Pos    `yaml:"-"`
}

// AlertRule is one alert rule of a map. When says what is watched; the
// fields that go with it set the threshold.
type AlertRule struct {
	// When is errors, lag, queue_age, retained_log, stream or initial_sync.
	When string `yaml:"when" json:"when"`
	// Errors and Within: "errors" fires at Errors or more errors (live
	// apply, catch-up and initial sync errors in the activity log) within
	// the last Within. Defaults 10 and 15m, as dual-write.
	Errors int      `yaml:"errors" json:"errors,omitempty"`
	Within Duration `yaml:"within" json:"within,omitempty"`
	// LagAbove: "lag" fires when a side's capture lag is above it.
	// Default 5m.
	LagAbove Duration `yaml:"lag_above" json:"lag_above,omitempty"`
	// RetentionPercent: "queue_age" fires when the oldest queued change
	// is older than this share of engine.queue_retention. Default 75.
	RetentionPercent int `yaml:"retention_percent" json:"retention_percent,omitempty"`
	// RetainedLogAbove: "retained_log" fires when a side retains more
	// source log (WAL, binlog) than this many bytes. Default 1 GiB.
	RetainedLogAbove int64 `yaml:"retained_log_above" json:"retained_log_above,omitempty"`
	// StalledAfter: "stream" fires when the map's stream has failed or
	// made no progress for this long. Default 5m.
	StalledAfter Duration `yaml:"stalled_after" json:"stalled_after,omitempty"`
	// Action when the rule fires: notify (default), pause or stop.
	Action string `yaml:"action" json:"action,omitempty"`
	// Notify names the channels to tell; empty means every channel.
	Notify []string `yaml:"notify" json:"notify,omitempty"`
	Pos    Pos      `yaml:"-" json:"-"`
}

// Alert rule kinds (AlertRule.When).
const (
	AlertErrors      = "errors"
	AlertLag         = "lag"
	AlertQueueAge    = "queue_age"
	AlertRetainedLog = "retained_log"
	AlertStream      = "stream"
	AlertInitialSync = "initial_sync"
)

// AlertKinds lists every AlertRule.When, in the order the UI offers them.
var AlertKinds = []string{AlertErrors, AlertLag, AlertQueueAge, AlertRetainedLog, AlertStream, AlertInitialSync}

// Alert actions (AlertRule.Action).
const (
	AlertNotify = "notify"
	AlertPause  = "pause"
	AlertStop   = "stop"
)

// AlertActions lists every AlertRule.Action.
var AlertActions = []string{AlertNotify, AlertPause, AlertStop}

// Alert rule defaults.
const (
	DefaultAlertErrors           = 10
	DefaultAlertWithin           = 15 * time.Minute
	DefaultAlertLag              = 5 * time.Minute
	DefaultAlertRetentionPercent = 75
	DefaultAlertRetainedLog      = 1 << 30
	DefaultAlertStalledAfter     = 5 * time.Minute
)

// ApplyDefaults fills the unset threshold of a rule's kind and the action.
// It is idempotent.
func (r *AlertRule) ApplyDefaults() {
	if r.Action == "" {
		r.Action = AlertNotify
	}
	switch r.When {
	case AlertErrors:
		if r.Errors == 0 {
			r.Errors = DefaultAlertErrors
		}
		if r.Within == 0 {
			r.Within = Duration(DefaultAlertWithin)
		}
	case AlertLag:
		if r.LagAbove == 0 {
			r.LagAbove = Duration(DefaultAlertLag)
		}
	case AlertQueueAge:
		if r.RetentionPercent == 0 {
			r.RetentionPercent = DefaultAlertRetentionPercent
		}
	case AlertRetainedLog:
		if r.RetainedLogAbove == 0 {
			r.RetainedLogAbove = DefaultAlertRetainedLog
		}
	case AlertStream:
		if r.StalledAfter == 0 {
			r.StalledAfter = Duration(DefaultAlertStalledAfter)
		}
	}
}

// String describes the rule for people: "10 errors in 15m → pause", with
// the channels it names: "lag above 5m → notify (notify ops-mail)".
func (r AlertRule) String() string {
	var cond string
	switch r.When {
	case AlertErrors:
		cond = fmt.Sprintf("%d errors in %s", r.Errors, r.Within)
	case AlertLag:
		cond = fmt.Sprintf("lag above %s", r.LagAbove)
	case AlertQueueAge:
		cond = fmt.Sprintf("queue age above %d%% of retention", r.RetentionPercent)
	case AlertRetainedLog:
		cond = fmt.Sprintf("retained log above %s", FormatBytes(r.RetainedLogAbove))
	case AlertStream:
		cond = fmt.Sprintf("stream stalled or failing for %s", r.StalledAfter)
	case AlertInitialSync:
		cond = "initial sync failed"
	default:
		cond = r.When
	}
	s := cond + " → " + r.Action
	if len(r.Notify) > 0 {
		s += " (notify " + strings.Join(r.Notify, ", ") + ")"
	}
	return s
}

// FormatBytes renders a size for people: 1.5 GiB, 300 KiB, 12 B.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	s := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + string("KMGTP"[exp]) + "iB"
}

// ChannelNames returns the names of every configured channel.
func (n Notify) ChannelNames() []string {
	var out []string
	for _, w := range n.Webhooks {
		out = append(out, w.Name)
	}
	for _, e := range n.Email {
		out = append(out, e.Name)
	}
	return out
}

func (v *validator) notify() {
	n := &v.c.Notify
	seen := map[string]bool{}
	name := func(path, s string) {
		switch {
		case strings.TrimSpace(s) == "":
			v.add(problem.ConfigInvalid, "", path, "channel name is missing; name the channel so rules can refer to it, e.g. name: ops")
		case seen[s]:
			v.add(problem.ConfigInvalid, "", path, "channel name %q is already used; give each channel its own name", s)
		}
		seen[s] = true
	}
	for i, w := range n.Webhooks {
		p := fmt.Sprintf("notify.webhooks[%d]", i)
		name(p+".name", w.Name)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(problem.ConfigInvalid, "", p+".url", "webhook url %q is not an http(s) URL; write e.g. https://hooks.example.com/dualwrite", w.URL)
		}
		if w.Format != WebhookJSON && w.Format != WebhookSlack {
			v.add(problem.ConfigInvalid, "", p+".format", "webhook format %q is not json or slack", w.Format)
		}
	}
	for i, e := range n.Email {
		p := fmt.Sprintf("notify.email[%d]", i)
		name(p+".name", e.Name)
		if _, port, err := net.SplitHostPort(e.SMTP); err != nil || port == "" {
			v.add(problem.ConfigInvalid, "", p+".smtp", "smtp %q is not host:port; write e.g. smtp.example.com:587", e.SMTP)
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			v.add(problem.ConfigInvalid, "", p+".from", "from %q is not an e-mail address", e.From)
		}
		if len(e.To) == 0 {
			v.add(problem.ConfigInvalid, "", p+".to", "to is empty; list at least one recipient")
		}
		for j, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				v.add(problem.ConfigInvalid, "", fmt.Sprintf("%s.to[%d]", p, j), "%q is not an e-mail address", to)
			}
		}
		if (e.Username == "") != (e.Password == "") {
			v.add(problem.ConfigInvalid, "", p+".username", "give both username and password, or neither")
		}
	}
}

// ValidateAlertRule checks one rule against the configured channels and
// returns a message per problem, each naming the field. The UI uses it for
// rules edited at run time; Validate reports the same with positions.
func (c *Config) ValidateAlertRule(r AlertRule) []string {
	var out []string
	if !slices.Contains(AlertKinds, r.When) {
		out = append(out, fmt.Sprintf("when: %q is not one of %s", r.When, strings.Join(AlertKinds, ", ")))
	}
	if !slices.Contains(AlertActions, r.Action) {
		out = append(out, fmt.Sprintf("action: %q is not one of %s", r.Action, strings.Join(AlertActions, ", ")))
	}
	if r.Errors < 0 || r.Within < 0 || r.LagAbove < 0 || r.RetainedLogAbove < 0 || r.StalledAfter < 0 {
		out = append(out, "thresholds must not be negative")
	}
	if r.RetentionPercent < 0 || r.RetentionPercent > 100 {
		out = append(out, fmt.Sprintf("retention_percent: %d is not between 1 and 100", r.RetentionPercent))
	}
	names := c.Notify.ChannelNames()
	for _, n := range r.Notify {
		if !slices.Contains(names, n) {
			out = append(out, fmt.Sprintf("notify: no channel is named %q; the channels are %s", n, strings.Join(append([]string{"(none)"}, names...)[min(1, len(names)):], ", ")))
		}
	}
	return out
}

func (v *validator) alerts(m *Map, p string) {
	for j, r := range m.Alerts {
		rp := fmt.Sprintf("%s.alerts[%d]", p, j)
		for _, msg := range v.c.ValidateAlertRule(r) {
			field, _, _ := strings.Cut(msg, ":")
			path := rp
			if !strings.Contains(field, " ") {
				path = rp + "." + field
			}
			v.add(problem.ConfigInvalid, m.Name, path, "%s", msg)
		}
	}
}

func (n *Notify) applyDefaults() {
	for i := range n.Webhooks {
		if n.Webhooks[i].Format == "" {
			n.Webhooks[i].Format = WebhookJSON
		}
	}
}

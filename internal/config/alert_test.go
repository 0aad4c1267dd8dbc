package config

import (
	"strings"
	"testing"
)

func TestAlertRulesValidate(t *testing.T) {
	t.Parallel()
	const mapHead = `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    alerts:
`
	for _, tc := range []struct {
		name, src string
		want      string // the issue's path and a part of its message
		pos       at
	}{
		{"unknown kind", header + mapHead + "      - {when: latency}\n", `maps[0].alerts[0].when: when: "latency" is not one of`, at{12, "latency"}},
		{"unknown action", header + mapHead + "      - {when: lag, action: restart}\n", `maps[0].alerts[0].action: action: "restart"`, at{12, "restart"}},
		{"share above 100", header + mapHead + "      - {when: queue_age, retention_percent: 150}\n", "retention_percent: 150 is not between", at{12, "150"}},
		{"unknown channel", header + mapHead + "      - {when: errors, notify: [pager]}\n", `no channel is named "pager"`, at{12, "[pager]"}},
		{"webhook url", header + mapHead + "      - {when: errors}\nnotify:\n  webhooks: [{name: h, url: 'ftp://x'}]\n", `notify.webhooks[0].url: webhook url "ftp://x"`, at{14, "'ftp"}},
		{"email recipient", header + mapHead + "      - {when: errors}\nnotify:\n  email: [{name: m, smtp: 'h:25', from: a@b.c, to: [nobody]}]\n", `notify.email[0].to[0]: "nobody" is not an e-mail address`, at{14, "nobody"}},
		{"duplicate channel", header + mapHead + "      - {when: errors}\nnotify:\n  webhooks: [{name: x, url: 'http://h/'}]\n  email: [{name: x, smtp: 'h:25', from: a@b.c, to: [a@b.c]}]\n", `channel name "x" is already used`, at{15, "x,"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, tc.src)
			issues := c.Validate()
			if len(issues) != 1 {
				t.Fatalf("want one issue, got %v", Issues(issues))
			}
			got := issues[0].Path + ": " + issues[0].Message
			if !strings.Contains(got, tc.want) {
				t.Errorf("issue %q does not contain %q", got, tc.want)
			}
			if want := tc.pos.pos(t, tc.src); issues[0].Pos != want {
				t.Errorf("issue at %v, want %v", issues[0].Pos, want)
			}
		})
	}
}

func TestAlertRuleDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule AlertRule
		want string
	}{
		{AlertRule{When: AlertErrors}, "10 errors in 15m → notify"},
		{AlertRule{When: AlertErrors, Errors: 3, Within: Duration(60e9), Action: AlertPause}, "3 errors in 1m → pause"},
		{AlertRule{When: AlertLag}, "lag above 5m → notify"},
		{AlertRule{When: AlertQueueAge}, "queue age above 75% of retention → notify"},
		{AlertRule{When: AlertRetainedLog}, "retained log above 1 GiB → notify"},
		{AlertRule{When: AlertStream, Action: AlertStop}, "stream stalled or failing for 5m → stop"},
		{AlertRule{When: AlertInitialSync}, "initial sync failed → notify"},
	} {
		r := tc.rule
		r.ApplyDefaults()
		if got := r.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.rule, got, tc.want)
		}
	}
}

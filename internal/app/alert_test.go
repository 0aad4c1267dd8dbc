package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server (go-smtp) on loopback that keeps every
// message it accepts.
type mailServer struct {
	Addr string
	mu   sync.Mutex
	msgs []mail
}

type mail struct {
	From string
	To   []string
	Data string
}

func startMailServer(t *testing.T) *mailServer {
	t.Helper()
	ms := &mailServer{}
	srv := smtp.NewServer(ms)
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ms
}

func (ms *mailServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{srv: ms}, nil }

func (ms *mailServer) messages() []mail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]mail(nil), ms.msgs...)
}

type mailSession struct {
	srv *mailServer
	cur mail
}

func (s *mailSession) Reset()        { s.cur = mail{} }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.From = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.cur)
	s.srv.mu.Unlock()
	return nil
}

// hookServer is a test HTTP server that keeps every webhook body.
type hookServer struct {
	URL    string
	mu     sync.Mutex
	bodies []string
}

func startHookServer(t *testing.T) *hookServer {
	t.Helper()
	h := &hookServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/services/T0/B0/secret"
	return h
}

func (h *hookServer) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

// appendConfig adds YAML to the end of the link's configuration, whose last
// map is customers: indented lines extend that map.
func (l *link) appendConfig(yaml string) {
	l.t.Helper()
	f, err := os.OpenFile(l.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		l.t.Fatal(err)
	}
}

type activityEntry struct {
	Actor   string
	Kind    string
	Message string
}

func (l *link) activity(name string) []activityEntry {
	l.t.Helper()
	var a struct{ Activity []activityEntry }
	l.mustCall("GET", "/api/v1/maps/"+name+"/activity?limit=1000", nil, &a)
	return a.Activity
}

func countMessages(acts []activityEntry, kind, part string) int {
	n := 0
	for _, a := range acts {
		if a.Kind == kind && strings.Contains(a.Message, part) {
			n++
		}
	}
	return n
}

func TestAlertThreeErrorsInAMinutePausesAndNotifiesOnce(t *testing.T) {
	mailSrv := startMailServer(t)
	hook := startHookServer(t)
	l := newLink(t, baseERP, "")
	l.appendConfig(fmt.Sprintf(`    alerts:
      - {when: errors, errors: 3, within: 1m, action: pause}
notify:
  webhooks:
    - {name: chat, url: %q, format: slack}
  email:
    - {name: ops, smtp: %q, from: dualwrite@example.com, to: [ops@example.com]}
`, hook.URL, mailSrv.Addr))
	l.start()
	l.runAll()

	// Three changes whose currency the CRM does not have: three live
	// errors (DW3002), each parked as a catch-up error.
	for i, cur := range []string{"ZZ1", "ZZ2", "ZZ3"} {
		l.exec(l.erp, fmt.Sprintf(`INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'A-%d', 'Bad %d', '%s')`, i, i, cur))
	}
	l.waitStatus("customers", "Paused")
	l.eventually("one e-mail and one webhook call", func() (bool, string) {
		return len(mailSrv.messages()) == 1 && len(hook.calls()) == 1, fmt.Sprintf("%d mails, %d calls", len(mailSrv.messages()), len(hook.calls()))
	})
	// The condition still holds (three errors within the minute): more
	// checks must not repeat the alert.
	for range 3 {
		l.r.Alerts.Check(context.Background())
	}
	if m, c := len(mailSrv.messages()), len(hook.calls()); m != 1 || c != 1 {
		t.Fatalf("alert repeated while its condition holds: %d mails, %d webhook calls", m, c)
	}

	m := mailSrv.messages()[0]
	if m.From != "dualwrite@example.com" || len(m.To) != 1 || m.To[0] != "ops@example.com" {
		t.Errorf("mail envelope = %s → %v", m.From, m.To)
	}
	for _, want := range []string{"Map:    customers", "3 errors in 1m", "paused the map", "/maps/customers"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Data)
		}
	}
	var slack map[string]any
	if err := json.Unmarshal([]byte(hook.calls()[0]), &slack); err != nil || len(slack) != 1 {
		t.Fatalf("webhook body is not a Slack message: %s (%v)", hook.calls()[0], err)
	}
	if text, _ := slack["text"].(string); !strings.Contains(text, "customers") || !strings.Contains(text, "ALERT 3 errors in 1m → pause") || !strings.Contains(text, "/maps/customers") {
		t.Errorf("slack text = %q", slack["text"])
	}

	// The deliveries are recorded once each exchange has ended.
	var acts []activityEntry
	l.eventually("the alert, its action and both deliveries in the activity log", func() (bool, string) {
		acts = l.activity("customers")
		for _, c := range []struct{ kind, part string }{
			{"alert", "DW2030 alert 3 errors in 1m → pause: 3 errors in the last 1m; see http://"},
			{"alert", "alert action: paused the map"},
			{"alert", "notified e-mail ops (ops@example.com): firing"},
			{"alert", "notified webhook chat (127.0.0.1:"},
			{"status", "Running → Paused"},
		} {
			if n := countMessages(acts, c.kind, c.part); n != 1 {
				return false, fmt.Sprintf("%d %s entries with %q, want 1: %+v", n, c.kind, c.part, acts)
			}
		}
		return true, ""
	})
	for _, a := range acts {
		if a.Kind == "status" && strings.Contains(a.Message, "→ Paused") && a.Actor != "alert" {
			t.Errorf("pause recorded for actor %q, want alert", a.Actor)
		}
	}
}

func TestAlertSaysWhenItClearsAndReportsAFailedChannel(t *testing.T) {
	hook := startHookServer(t)
	l := newLink(t, baseERP, "")
	// A queue older than 5% of a 1m retention (3s) fires; resuming drains
	// the queue and clears it. The e-mail channel points at a closed port.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	l.appendConfig(fmt.Sprintf(`    alerts:
      - {when: queue_age, retention_percent: 5}
notify:
  webhooks:
    - {name: hook, url: %q}
  email:
    - {name: nobody, smtp: %q, from: dualwrite@example.com, to: [ops@example.com]}
`, hook.URL, deadAddr))
	cfg, _ := os.ReadFile(l.cfgPath)
	if err := os.WriteFile(l.cfgPath, []byte(strings.Replace(string(cfg), "  poll_interval: 10ms\n", "  poll_interval: 10ms\n  queue_retention: 1m\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start()
	l.runAll()
	l.mustCall("POST", "/api/v1/maps/customers/pause", map[string]any{}, nil)
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'Q-1', 'Queued', 'USD')`)
	l.eventually("the queue-age alert fires", func() (bool, string) {
		return len(hook.calls()) == 1, fmt.Sprint(hook.calls())
	})
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{}, nil)
	l.waitStatus("customers", "Running")
	l.eventually("the alert clears", func() (bool, string) {
		return len(hook.calls()) == 2, fmt.Sprint(hook.calls())
	})
	var states []string
	for _, body := range hook.calls() {
		var a struct{ Map, Rule, State, URL string }
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("webhook body %s: %v", body, err)
		}
		if a.Map != "customers" || a.Rule != "queue age above 5% of retention → notify" || !strings.HasSuffix(a.URL, "/maps/customers") {
			t.Errorf("webhook body = %s", body)
		}
		states = append(states, a.State)
	}
	if strings.Join(states, ",") != "firing,cleared" {
		t.Errorf("webhook states = %v, want firing then cleared", states)
	}
	// The e-mail channel is tried after the webhook; both of its attempts
	// (firing, cleared) fail and are recorded.
	l.eventually("two failed deliveries recorded", func() (bool, string) {
		acts := l.activity("customers")
		n := countMessages(acts, "alert", "DW2031 e-mail nobody not delivered")
		return n == 2, fmt.Sprintf("%d: %+v", n, acts)
	})
	if n := countMessages(l.activity("customers"), "alert", "alert cleared queue age above 5% of retention"); n != 1 {
		t.Errorf("activity has %d clearings", n)
	}
}

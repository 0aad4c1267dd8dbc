package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
)

// Alert is one notification: a rule that fired or cleared. It is the JSON
// body of a webhook in the json format.
type Alert struct {
	Map    string    `json:"map"`
	Rule   string    `json:"rule"`
	When   string    `json:"when"`
	State  string    `json:"state"` // StateFiring or StateCleared
	Detail string    `json:"detail"`
	Action string    `json:"action,omitempty"`
	URL    string    `json:"url,omitempty"`
	Time   time.Time `json:"time"`
}

// Alert states.
const (
	StateFiring  = "firing"
	StateCleared = "cleared"
)

// Text renders the alert as one line for chat and e-mail subjects.
func (a Alert) Text() string {
	var b strings.Builder
	if a.State == StateCleared {
		fmt.Fprintf(&b, "dualwrite map %s: cleared: %s", a.Map, a.Rule)
	} else {
		fmt.Fprintf(&b, "dualwrite map %s: ALERT %s: %s", a.Map, a.Rule, a.Detail)
		if a.Action != "" {
			fmt.Fprintf(&b, "; %s", a.Action)
		}
	}
	if a.URL != "" {
		fmt.Fprintf(&b, " (%s)", a.URL)
	}
	return b.String()
}

// channel delivers alerts somewhere.
type channel interface {
	name() string
	kind() string   // "webhook", "e-mail"
	target() string // where to, for the activity log
	send(ctx context.Context, a Alert) error
}

type webhook struct {
	cfg    config.Webhook
	client *http.Client
}

func (h *webhook) name() string { return h.cfg.Name }
func (h *webhook) kind() string { return "webhook" }

// target names the host only: a webhook URL's path is often its secret.
func (h *webhook) target() string {
	if i := strings.Index(h.cfg.URL, "://"); i >= 0 {
		rest := h.cfg.URL[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	return "?"
}

func (h *webhook) send(ctx context.Context, a Alert) error {
	var body any = a
	if h.cfg.Format == config.WebhookSlack {
		body = struct {
			Text string `json:"text"`
		}{a.Text()}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dualwrite-alert")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", h.target(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s answered %s", h.target(), resp.Status)
	}
	return nil
}

type email struct {
	cfg config.Email
}

func (e *email) name() string   { return e.cfg.Name }
func (e *email) kind() string   { return "e-mail" }
func (e *email) target() string { return strings.Join(e.cfg.To, ", ") }

func (e *email) send(ctx context.Context, a Alert) error {
	var msg bytes.Buffer
	subject := a.Text()
	if len(subject) > 180 {
		subject = subject[:180] + "…"
	}
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		e.cfg.From, strings.Join(e.cfg.To, ", "), mimeHeader(subject), a.Time.Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Map:    %s\r\nRule:   %s\r\nState:  %s\r\nDetail: %s\r\n", a.Map, a.Rule, a.State, a.Detail)
	if a.Action != "" {
		fmt.Fprintf(&msg, "Action: %s\r\n", a.Action)
	}
	if a.URL != "" {
		fmt.Fprintf(&msg, "\r\nOpen the map: %s\r\n", a.URL)
	}
	if err := e.deliver(ctx, msg.Bytes()); err != nil {
		return fmt.Errorf("send through %s: %w", e.cfg.SMTP, err)
	}
	return nil
}

// deliver runs one SMTP exchange, bounded by ctx and a 30s deadline:
// STARTTLS when offered, PLAIN authentication when configured.
func (e *email) deliver(ctx context.Context, msg []byte) error {
	host, _, err := net.SplitHostPort(e.cfg.SMTP)
	if err != nil {
		return err
	}
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", e.cfg.SMTP)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return err
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(e.cfg.From); err != nil {
		return err
	}
	for _, to := range e.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(msg); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// mimeHeader encodes a header value that is not plain ASCII.
func mimeHeader(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] < 0x20 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

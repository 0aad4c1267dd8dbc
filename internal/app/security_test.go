package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/api"
	"github.com/dualwrite/dualwrite/internal/app"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/web"
)

type reply struct {
	status int
	code   string
	body   string
}

func send(t *testing.T, c *http.Client, method, u string, hdr map[string]string, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &eb)
	return reply{resp.StatusCode, eb.Error.Code, string(b)}
}

// TestEveryRouteNeedsAToken: each API route, /metrics and the workspace
// root answer 401 (DW2300) without a token or with a wrong one; only the
// probes and the login form are public.
func TestEveryRouteNeedsAToken(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	routes := append(api.Routes(), "GET /metrics", "GET /", "POST /")
	routes = append(routes, web.Routes()...)
	if len(routes) < 12 {
		t.Fatalf("routes %v", routes)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		path = strings.ReplaceAll(strings.ReplaceAll(path, "{name}", "companies"), "{$}", "")
		if path == "/static/" {
			path = "/static/htmx.min.js"
		}
		for _, hdr := range []map[string]string{
			nil,
			{"Authorization": "Bearer " + l.r.Tokens.Operator + "x"},
			{"Authorization": "Basic " + l.r.Tokens.Operator},
		} {
			got := send(t, c, method, l.api+path, hdr, "{}")
			if got.status != http.StatusUnauthorized || got.code != string(problem.Unauthenticated) {
				t.Errorf("%s %s with %v: %d %s, want 401 %s", method, path, hdr, got.status, got.code, problem.Unauthenticated)
			}
		}
	}
	if st := l.status("companies"); st != "Not running" {
		t.Fatalf("an unauthenticated request acted: companies is %s", st)
	}
	for _, p := range []string{"/healthz", "/readyz", "/login"} {
		if got := send(t, c, "GET", l.api+p, nil, ""); got.status != 200 {
			t.Errorf("GET %s without a token: %d %s, want 200", p, got.status, got.body)
		}
	}
	// A browser is sent to the login form.
	if got := send(t, c, "GET", l.api+"/", map[string]string{"Accept": "text/html"}, ""); got.status != http.StatusSeeOther {
		t.Errorf("GET / from a browser without a session: %d, want 303 to /login", got.status)
	}
}

// TestCrossOriginPostIsRefused: a page of another site, in the browser of
// an operator who is logged in, cannot act: its simple POST (text/plain)
// carries the session cookie (if the browser sends it at all) but an
// Origin that is not the engine's, and is refused with 403.
func TestCrossOriginPostIsRefused(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	got := send(t, c, "POST", l.api+"/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": l.api},
		url.Values{"token": {l.r.Tokens.Operator}}.Encode())
	if got.status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", got.status, got.body)
	}
	u, _ := url.Parse(l.api)
	if len(jar.Cookies(u)) == 0 {
		t.Fatal("no session cookie after login")
	}
	run := l.api + "/api/v1/maps/companies/run"
	for _, hdr := range []map[string]string{
		{"Origin": "https://evil.example", "Content-Type": "text/plain"},
		{"Origin": "null", "Content-Type": "text/plain"},
		{"Content-Type": "text/plain"}, // no Origin and no CSRF token
		{"Origin": "http://" + strings.Replace(u.Host, "127.0.0.1", "localhost", 1), "Content-Type": "application/json"},
	} {
		got := send(t, c, "POST", run, hdr, `{}`)
		if got.status != http.StatusForbidden || got.code != string(problem.CrossOrigin) {
			t.Errorf("POST with %v and a valid session: %d %s, want 403 %s", hdr, got.status, got.code, problem.CrossOrigin)
		}
	}
	if st := l.status("companies"); st != "Not running" {
		t.Fatalf("a cross-origin POST acted: companies is %s", st)
	}
	// The same request from the workspace itself acts, and the activity
	// log records the token that acted.
	if got := send(t, c, "POST", run, map[string]string{"Origin": l.api, "Content-Type": "application/json"}, `{}`); got.status != 200 {
		t.Fatalf("same-origin POST: %d %s", got.status, got.body)
	}
	l.waitStatus("companies", "Running")
	var acts struct {
		Activity []struct{ Actor, Kind string }
	}
	l.mustCall("GET", "/api/v1/maps/companies/activity", nil, &acts)
	found := false
	for _, a := range acts.Activity {
		if a.Kind == "run" && strings.HasPrefix(a.Actor, "operator token ") && !strings.Contains(a.Actor, l.r.Tokens.Operator) {
			found = true
		}
	}
	if !found {
		t.Errorf("activity %+v: no run by the operator token", acts.Activity)
	}
	// A viewer reads but cannot act.
	v := map[string]string{"Authorization": "Bearer " + l.r.Tokens.Viewer}
	if got := send(t, http.DefaultClient, "GET", l.api+"/api/v1/maps", v, ""); got.status != 200 {
		t.Errorf("viewer GET: %d", got.status)
	}
	if got := send(t, http.DefaultClient, "POST", l.api+"/api/v1/maps/companies/pause", v, "{}"); got.status != 403 || got.code != string(problem.Forbidden) {
		t.Errorf("viewer POST: %d %s, want 403 %s", got.status, got.code, problem.Forbidden)
	}
	// The token files are the operator's alone.
	for _, r := range auth.Roles {
		fi, err := os.Stat(auth.TokenPath(l.r.Config.Engine.DataDir, r))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s token file: %v, mode %v", r, err, fi.Mode().Perm())
		}
	}
}

func loadLinkConfig(t *testing.T, l *link) *config.Config {
	t.Helper()
	cfg, err := config.Load(l.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestNonLoopbackListenNeedsTLS: listening on every interface without TLS
// is refused at start (DW2310) before anything is opened; the explicit
// opt-out starts, and so does TLS, which then serves HTTPS with a Secure
// session cookie.
func TestNonLoopbackListenNeedsTLS(t *testing.T) {
	l := newLink(t, baseERP, "")
	cfg := loadLinkConfig(t, l)
	quiet := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	cfg.Engine.Listen = "0.0.0.0:0"
	r, err := app.Start(ctx, cfg, quiet)
	if err == nil {
		r.Close()
		t.Fatal("started on 0.0.0.0 without TLS")
	}
	if problem.CodeOf(err) != problem.ListenInsecure || !strings.Contains(err.Error(), "tls_cert") {
		t.Fatalf("error %v, want %s naming the way out", err, problem.ListenInsecure)
	}
	if _, err := os.Stat(cfg.Engine.DataDir); !os.IsNotExist(err) {
		t.Errorf("the refused start created %s (%v)", cfg.Engine.DataDir, err)
	}
	issues := cfg.Validate()
	if len(issues) != 1 || issues[0].Code != problem.ListenInsecure {
		t.Errorf("Validate: %v, want one %s", issues, problem.ListenInsecure)
	}

	cfg.Engine.InsecureListen = true
	r, err = app.Start(ctx, cfg, quiet)
	if err != nil {
		t.Fatalf("insecure_listen: %v", err)
	}
	r.Close()

	cfg.Engine.InsecureListen = false
	cfg.Engine.TLSCert, cfg.Engine.TLSKey = selfSigned(t)
	r, err = app.Start(ctx, cfg, quiet)
	if err != nil {
		t.Fatalf("with TLS: %v", err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.URL, "https://") {
		t.Errorf("URL %s", r.URL)
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	c := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the test's own certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://127.0.0.1:" + port
	if got := send(t, c, "GET", base+"/api/v1/maps", map[string]string{"Authorization": "Bearer " + r.Tokens.Viewer}, ""); got.status != 200 {
		t.Fatalf("HTTPS GET: %d %s", got.status, got.body)
	}
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"token": {r.Tokens.Viewer}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("session cookie over TLS: %q", sc)
	}
	plain := send(t, &http.Client{Timeout: 5 * time.Second}, "GET", "http://127.0.0.1:"+port+"/healthz", nil, "")
	if plain.status == 200 {
		t.Errorf("the TLS port answered plain HTTP")
	}
}

// TestPortInUse: a port another process holds is DW2311, not DW9000.
func TestPortInUse(t *testing.T) {
	l := newLink(t, baseERP, "")
	cfg := loadLinkConfig(t, l)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg.Engine.Listen = busy.Addr().String()
	r, err := app.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		r.Close()
		t.Fatal("started on a port in use")
	}
	if problem.CodeOf(err) != problem.PortInUse || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("error %v, want %s naming the address", err, problem.PortInUse)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 into a temporary
// directory.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dualwrite test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServeRefusesOpenListen: `dualwrite serve` as a user runs it refuses
// a listen address on every interface without TLS, with DW2310 and the
// place in the file.
func TestServeRefusesOpenListen(t *testing.T) {
	dir := t.TempDir()
	erp := openDB(t, filepath.Join(dir, "erp.db"))
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	mustExec(t, erp, itemsLeft)
	mustExec(t, crm, itemsRight)
	cfg := filepath.Join(dir, "dualwrite.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(itemsConfig, dir, "0.0.0.0:7070")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "serve", "--config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve on 0.0.0.0: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "error: DW2310 cannot start: "+cfg+":") || !strings.Contains(string(out), "tls_cert") {
		t.Fatalf("serve on 0.0.0.0 said:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("the refused start created data_dir (%v)", err)
	}
}

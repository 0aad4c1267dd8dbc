package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	toks, err := auth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(toks.Operator, "dwo_") || !strings.HasPrefix(toks.Viewer, "dwv_") || toks.Operator[4:] == toks.Viewer[4:] {
		t.Fatalf("tokens %q %q", toks.Operator, toks.Viewer)
	}
	for _, r := range auth.Roles {
		fi, err := os.Stat(auth.TokenPath(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s token mode %04o, want 0600", r, fi.Mode().Perm())
		}
	}
	again, err := auth.LoadOrCreate(dir)
	if err != nil || again != toks {
		t.Fatalf("second start: %v, tokens changed: %v", err, again != toks)
	}
	tok, role, err := auth.ReadToken(dir)
	if err != nil || tok != toks.Operator || role != auth.Operator {
		t.Fatalf("ReadToken = %q %s %v", tok, role, err)
	}
	if err := os.Chmod(auth.TokenPath(dir, auth.Operator), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadOrCreate(dir); problem.CodeOf(err) != problem.TokenFile {
		t.Fatalf("world-readable token: err %v, want %s", err, problem.TokenFile)
	}
	if _, _, err := auth.ReadToken(t.TempDir()); problem.CodeOf(err) != problem.Unauthenticated {
		t.Fatalf("ReadToken on an empty dir: %v", err)
	}
}

// server serves a handler that echoes the acting identity behind Wrap.
func server(t *testing.T) (*httptest.Server, auth.Tokens) {
	t.Helper()
	toks, err := auth.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(auth.Options{Tokens: toks})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok {
			t.Errorf("%s %s reached the handler without identity", r.Method, r.URL.Path)
		}
		io.WriteString(w, id.Actor()+"|"+auth.CSRFToken(r.Context()))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewServer(a.Wrap(mux))
	t.Cleanup(srv.Close)
	return srv, toks
}

type answer struct {
	status int
	code   string
	body   string
}

func do(t *testing.T, c *http.Client, method, u string, hdr map[string]string, body string) answer {
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
	return answer{resp.StatusCode, eb.Error.Code, string(b)}
}

func TestBearer(t *testing.T) {
	t.Parallel()
	srv, toks := server(t)
	c := srv.Client()
	op := map[string]string{"Authorization": "Bearer " + toks.Operator}
	vw := map[string]string{"Authorization": "Bearer " + toks.Viewer}
	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		status int
		code   problem.Code
	}{
		{"no token", "GET", "/api/v1/maps", nil, 401, problem.Unauthenticated},
		{"no token post", "POST", "/api/v1/maps/a/pause", nil, 401, problem.Unauthenticated},
		{"wrong token", "GET", "/api/v1/maps", map[string]string{"Authorization": "Bearer dwo_nope"}, 401, problem.Unauthenticated},
		{"basic scheme", "GET", "/api/v1/maps", map[string]string{"Authorization": "Basic " + toks.Operator}, 401, problem.Unauthenticated},
		{"viewer reads", "GET", "/api/v1/maps", vw, 200, ""},
		{"viewer cannot act", "POST", "/api/v1/maps/a/pause", vw, 403, problem.Forbidden},
		{"operator acts", "POST", "/api/v1/maps/a/pause", op, 200, ""},
		{"operator from another site", "POST", "/api/v1/maps/a/pause",
			map[string]string{"Authorization": "Bearer " + toks.Operator, "Origin": "https://evil.example"}, 403, problem.CrossOrigin},
		{"public health", "GET", "/healthz", nil, 200, ""},
	}
	for _, tc := range cases {
		got := do(t, c, tc.method, srv.URL+tc.path, tc.hdr, "")
		if got.status != tc.status || got.code != string(tc.code) {
			t.Errorf("%s: %d %s, want %d %s (%s)", tc.name, got.status, got.code, tc.status, tc.code, got.body)
		}
	}
	got := do(t, c, "GET", srv.URL+"/api/v1/maps", op, "")
	if !strings.HasPrefix(got.body, "operator token ") || strings.Contains(got.body, toks.Operator) {
		t.Errorf("actor %q: want the operator token's fingerprint, never the token", got.body)
	}
}

// login signs a cookie-keeping client in with tok.
func login(t *testing.T, srv *httptest.Server, tok string) (*http.Client, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(srv.URL+"/login", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c, resp.StatusCode
}

func TestSession(t *testing.T) {
	t.Parallel()
	srv, toks := server(t)

	// The form is served, accessible, to anyone.
	page := do(t, srv.Client(), "GET", srv.URL+"/login", nil, "")
	if page.status != 200 || !strings.Contains(page.body, `<label for="token">`) || !strings.Contains(page.body, `id="token"`) {
		t.Fatalf("login page: %d %s", page.status, page.body)
	}
	// A browser without a session is sent to the form; an API client gets 401.
	nc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if got := do(t, nc, "GET", srv.URL+"/", map[string]string{"Accept": "text/html"}, ""); got.status != http.StatusSeeOther {
		t.Errorf("page without session: %d, want 303 to /login", got.status)
	}
	if _, st := login(t, srv, "dwo_wrong"); st != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d, want 401", st)
	}

	c, st := login(t, srv, toks.Operator)
	if st != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", st)
	}
	u, _ := url.Parse(srv.URL)
	var sess *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == auth.SessionCookie {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatal("no session cookie after login")
	}
	got := do(t, c, "GET", srv.URL+"/", nil, "")
	actor, csrf, _ := strings.Cut(got.body, "|")
	if got.status != 200 || !strings.HasPrefix(actor, "operator token ") || csrf == "" {
		t.Fatalf("GET with session: %d %q", got.status, got.body)
	}

	post := srv.URL + "/api/v1/maps/a/pause"
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"cross-origin text/plain", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403},
		{"cross-origin with csrf", map[string]string{"Origin": "https://evil.example", auth.CSRFHeader: csrf}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"no origin no csrf", map[string]string{"Content-Type": "text/plain"}, 403},
		{"no origin bad csrf", map[string]string{auth.CSRFHeader: csrf + "x"}, 403},
		{"same origin", map[string]string{"Origin": srv.URL}, 200},
		{"csrf header", map[string]string{auth.CSRFHeader: csrf}, 200},
	} {
		if got := do(t, c, "POST", post, tc.hdr, "{}"); got.status != tc.status {
			t.Errorf("%s: %d, want %d (%s)", tc.name, got.status, tc.status, got.body)
		}
	}
	form := url.Values{auth.CSRFField: {csrf}}.Encode()
	if got := do(t, c, "POST", post, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form); got.status != 200 {
		t.Errorf("csrf form field: %d %s", got.status, got.body)
	}

	// A viewer session reads but does not act.
	vc, _ := login(t, srv, toks.Viewer)
	if got := do(t, vc, "POST", post, map[string]string{"Origin": srv.URL}, ""); got.status != 403 || got.code != string(problem.Forbidden) {
		t.Errorf("viewer session acting: %d %s", got.status, got.code)
	}

	// A forged or tampered cookie is no session.
	fc := &http.Client{}
	for _, v := range []string{"x", sess.Value + "x", strings.Replace(sess.Value, ".", "A.", 1)} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/maps", nil)
		req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: v})
		resp, err := fc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("tampered cookie %q: %d, want 401", v, resp.StatusCode)
		}
	}

	// Logout clears the cookie.
	if got := do(t, c, "POST", srv.URL+"/logout", map[string]string{"Origin": srv.URL}, ""); got.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", got.status)
	}
	if got := do(t, c, "GET", srv.URL+"/api/v1/maps", nil, ""); got.status != 401 {
		t.Errorf("after logout: %d, want 401", got.status)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	toks, err := auth.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := auth.New(auth.Options{Tokens: toks, Secure: true}).Wrap(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {toks.Viewer}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Fatalf("login: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	set := rec.Header().Get("Set-Cookie")
	for _, want := range []string{auth.SessionCookie + "=", "HttpOnly", "SameSite=Strict", "Secure", "Path=/"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
}

// TestOriginBehindProxy: an origin with this server's host and port is
// accepted whatever its scheme (a proxy may end TLS in front), a trusted
// origin is accepted, any other is refused.
func TestOriginBehindProxy(t *testing.T) {
	t.Parallel()
	toks, err := auth.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := auth.New(auth.Options{Tokens: toks, TrustedOrigins: []string{"https://dw.example.com/"}}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct {
		origin string
		status int
	}{
		{"http://engine.lan:7070", 200},
		{"https://engine.lan:7070", 200},
		{"https://DW.example.com", 200},
		{"https://engine.lan:7071", 403},
		{"https://dw.example.com.evil.example", 403},
		{"ftp://engine.lan:7070", 403},
	} {
		req := httptest.NewRequest("POST", "http://engine.lan:7070/api/v1/maps/a/run", nil)
		req.Header.Set("Authorization", "Bearer "+toks.Operator)
		req.Header.Set("Origin", tc.origin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("Origin %s: %d, want %d", tc.origin, rec.Code, tc.status)
		}
	}
}

// Package auth authenticates every request to the engine's HTTP server
// (API, web workspace, metrics) and refuses cross-origin state changes.
//
// Tokens. LoadOrCreate creates, at first start, one random token per role
// in engine.data_dir: operator.token ("dwo_…") and viewer.token ("dwv_…"),
// mode 0600. ReadToken is how a client on the same machine finds one.
// A viewer may only read (GET, HEAD); an operator may also act.
//
// Requests. Authenticator.Wrap returns the handler to serve:
//
//	a := auth.New(auth.Options{Tokens: toks, Secure: tlsOn, Logger: log})
//	srv.Handler = a.Wrap(mux)
//
// It answers GET /login (an HTML form), POST /login (form field "token";
// sets the HttpOnly, SameSite=Strict session cookie and redirects to "/")
// and POST /logout (clears the cookie, redirects to /login) itself. Paths
// in Options.Public (default /healthz and /readyz) pass unauthenticated.
// Every other request needs `Authorization: Bearer <token>` or the session
// cookie; without them a browser page request (GET, Accept text/html,
// outside /api/) is redirected to /login and anything else gets 401 with
// a JSON error body of code DW2300.
//
// State-changing requests (every method but GET and HEAD) also need the
// operator role (else 403, DW2301) and, when they come with the session
// cookie, either an Origin header naming this server or a CSRF token: the
// X-CSRF-Token header or the "csrf_token" form field, whose value a page
// gets from CSRFToken(r.Context()). A request whose Origin names another
// site is refused (403, DW2302) whatever it carries, so a cross-origin
// simple POST (text/plain) never acts.
//
// Handlers read who acts with FromContext; Identity.Actor is the text the
// activity log records ("operator token 1a2b3c4d").
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Paths, names and defaults of the package's HTTP surface.
const (
	LoginPath     = "/login"
	LogoutPath    = "/logout"
	SessionCookie = "dualwrite_session"
	CSRFHeader    = "X-CSRF-Token"
	CSRFField     = "csrf_token"
	// DefaultSessionTTL is how long a session cookie stays valid.
	DefaultSessionTTL = 12 * time.Hour
)

// Identity is who a request authenticated as.
type Identity struct {
	Role Role
	// Token is the token's fingerprint (8 hex digits of its SHA-256), never
	// the token itself.
	Token string
	// Session is true when the request came with the session cookie rather
	// than a bearer token.
	Session bool
}

// Actor is the identity as the activity log records it.
func (id Identity) Actor() string { return string(id.Role) + " token " + id.Token }

// CanAct reports whether the identity may change state.
func (id Identity) CanAct() bool { return id.Role == Operator }

// Options configure an Authenticator.
type Options struct {
	// Tokens are the accepted tokens. Both must be set.
	Tokens Tokens
	// Secure marks the session cookie Secure; set it when serving TLS.
	Secure bool
	// Public are exact paths served without authentication. Nil means
	// /healthz and /readyz; an empty non-nil slice means none.
	Public []string
	// TrustedOrigins are extra origins ("https://dw.example.com") allowed
	// to send state-changing requests, e.g. the address of a reverse proxy.
	TrustedOrigins []string
	// SessionTTL defaults to DefaultSessionTTL.
	SessionTTL time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
	// Logger receives refused logins. Nil discards.
	Logger *slog.Logger
}

// Authenticator checks requests against the tokens.
type Authenticator struct {
	tokens  Tokens
	keys    map[Role][]byte // session signing keys, one per role's token
	secure  bool
	public  map[string]bool
	origins map[string]bool
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// New returns an Authenticator. It panics when a token is empty: serving
// with an empty token would accept an empty bearer.
func New(o Options) *Authenticator {
	if o.Tokens.Operator == "" || o.Tokens.Viewer == "" {
		panic("auth.New: both tokens are required")
	}
	a := &Authenticator{
		tokens:  o.Tokens,
		keys:    map[Role][]byte{},
		secure:  o.Secure,
		public:  map[string]bool{},
		origins: map[string]bool{},
		ttl:     o.SessionTTL,
		now:     o.Now,
		log:     o.Logger,
	}
	for _, r := range Roles {
		k := sha256.Sum256([]byte("dualwrite session key\x00" + o.Tokens.Of(r)))
		a.keys[r] = k[:]
	}
	pub := o.Public
	if pub == nil {
		pub = []string{"/healthz", "/readyz"}
	}
	for _, p := range pub {
		a.public[p] = true
	}
	for _, s := range o.TrustedOrigins {
		a.origins[strings.ToLower(strings.TrimRight(s, "/"))] = true
	}
	if a.ttl <= 0 {
		a.ttl = DefaultSessionTTL
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}

type ctxKey int

const (
	identityKey ctxKey = iota
	csrfKey
)

// FromContext returns the identity the request authenticated as.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey).(Identity)
	return id, ok
}

// WithIdentity returns ctx carrying id, for handlers served without Wrap
// (tests, in-process calls).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// CSRFToken returns the CSRF token a page served to a session must put in
// its state-changing requests (X-CSRF-Token header or csrf_token field).
// It is "" for bearer requests, which need none.
func CSRFToken(ctx context.Context) string {
	s, _ := ctx.Value(csrfKey).(string)
	return s
}

// Wrap returns next behind authentication, with /login and /logout served.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case LoginPath:
			a.login(w, r)
			return
		case LogoutPath:
			a.logout(w, r)
			return
		}
		if a.public[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		id, payload, ok := a.authenticate(r)
		if !ok {
			a.refuseUnauthenticated(w, r)
			return
		}
		ctx := WithIdentity(r.Context(), id)
		if id.Session {
			ctx = context.WithValue(ctx, csrfKey, a.csrfFor(id.Role, payload))
		}
		if !safeMethod(r.Method) {
			if !id.CanAct() {
				writeError(w, http.StatusForbidden, problem.Forbidden,
					"the viewer token may only read; use the operator token to "+r.Method+" "+r.URL.Path)
				return
			}
			if msg := a.checkOrigin(r, id, payload); msg != "" {
				writeError(w, http.StatusForbidden, problem.CrossOrigin, msg)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// authenticate returns the request's identity and, for a session, the
// cookie's signed payload (the CSRF token derives from it). A bearer
// header, when present, decides alone: a wrong bearer is not rescued by a
// cookie.
func (a *Authenticator) authenticate(r *http.Request) (Identity, string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return Identity{}, "", false
		}
		role, ok := a.roleOf(strings.TrimSpace(tok))
		if !ok {
			return Identity{}, "", false
		}
		return Identity{Role: role, Token: fingerprint(a.tokens.Of(role))}, "", true
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return Identity{}, "", false
	}
	role, payload, ok := a.verifySession(c.Value)
	if !ok {
		return Identity{}, "", false
	}
	return Identity{Role: role, Token: fingerprint(a.tokens.Of(role)), Session: true}, payload, true
}

// roleOf compares tok with every token in constant time.
func (a *Authenticator) roleOf(tok string) (Role, bool) {
	var found Role
	for _, r := range Roles {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(a.tokens.Of(r))) == 1 {
			found = r
		}
	}
	return found, found != ""
}

// Session cookies are "<payload>.<mac>", payload = role|expiry|nonce in
// base64url, mac = HMAC-SHA256 under the role's key. Rotating a token's
// file (and restarting) thus ends that role's sessions.
func (a *Authenticator) newSession(role Role) string {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails
	raw := string(role) + "|" + strconv.FormatInt(a.now().Add(a.ttl).Unix(), 10) + "|" + base64.RawURLEncoding.EncodeToString(nonce[:])
	payload := base64.RawURLEncoding.EncodeToString([]byte(raw))
	return payload + "." + a.mac(role, "session|"+payload)
}

func (a *Authenticator) verifySession(v string) (Role, string, bool) {
	payload, mac, ok := strings.Cut(v, ".")
	if !ok {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return "", "", false
	}
	role := Role(parts[0])
	if a.keys[role] == nil {
		return "", "", false
	}
	if !hmac.Equal([]byte(mac), []byte(a.mac(role, "session|"+payload))) {
		return "", "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || a.now().Unix() >= exp {
		return "", "", false
	}
	return role, payload, true
}

func (a *Authenticator) mac(role Role, msg string) string {
	h := hmac.New(sha256.New, a.keys[role])
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func (a *Authenticator) csrfFor(role Role, payload string) string {
	return a.mac(role, "csrf|"+payload)
}

// checkOrigin returns why a state-changing request is refused, or "".
func (a *Authenticator) checkOrigin(r *http.Request, id Identity, payload string) string {
	if o := r.Header.Get("Origin"); o != "" {
		if a.sameOrigin(r, o) {
			return ""
		}
		return "refused: " + r.Method + " " + r.URL.Path + " comes from origin " + o +
			", not from this server; act from the workspace itself or with the bearer token"
	}
	if !id.Session {
		// A page of another site cannot set Authorization without a CORS
		// preflight, which this server never grants.
		return ""
	}
	tok := r.Header.Get(CSRFHeader)
	if tok == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		tok = r.PostFormValue(CSRFField)
	}
	if tok != "" && hmac.Equal([]byte(tok), []byte(a.csrfFor(id.Role, payload))) {
		return ""
	}
	return "refused: " + r.Method + " " + r.URL.Path + " has neither an Origin header naming this server nor a valid " +
		CSRFHeader + "; reload the page and try again"
}

func (a *Authenticator) sameOrigin(r *http.Request, origin string) bool {
	o := strings.ToLower(strings.TrimRight(origin, "/"))
	if a.origins[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" and garbage
	}
	// The host and port decide, not the scheme: behind a proxy that ends
	// TLS the browser's origin is https while this server sees http, and
	// no other site can serve pages from this server's host and port.
	return strings.EqualFold(u.Host, r.Host)
}

func (a *Authenticator) refuseUnauthenticated(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") &&
		strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="dualwrite"`)
	writeError(w, http.StatusUnauthorized, problem.Unauthenticated,
		"authentication required: send `Authorization: Bearer <token>` (operator.token or viewer.token in engine.data_dir) or log in at "+LoginPath)
}

// writeError answers with the API's error body shape.
func writeError(w http.ResponseWriter, status int, code problem.Code, msg string) {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.MarshalIndent(struct {
		Error detail `json:"error"`
	}{detail{string(code), msg}}, "", "  ") // strings always encode
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

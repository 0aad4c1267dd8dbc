package auth

import (
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · dualwrite</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1b1b1b;margin:0}
main{max-width:26rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:6px;box-shadow:0 1px 3px #0003}
h1{font-size:1.4rem;margin-top:0}
label{display:block;font-weight:600;margin-bottom:.3rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #5c5c5c;border-radius:4px}
input:focus,button:focus{outline:3px solid #0b57d0;outline-offset:2px}
button{margin-top:1rem;padding:.5rem 1.2rem;font:inherit;color:#fff;background:#0b57d0;border:0;border-radius:4px;cursor:pointer}
.error{color:#a50e0e;background:#fce8e6;padding:.6rem;border-radius:4px}
.hint{color:#444;font-size:.9rem}
</style>
</head>
<body>
<main>
<h1>Sign in to dualwrite</h1>
{{if .Error}}<p class="error" role="alert" id="login-error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus{{if .Error}} aria-invalid="true" aria-describedby="login-error token-hint"{{else}} aria-describedby="token-hint"{{end}}>
<p class="hint" id="token-hint">The engine wrote two tokens in its data directory at first start:
<code>operator.token</code> may act, <code>viewer.token</code> may only look.</p>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`))

func (a *Authenticator) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct{ Error string }{msg}) // the client went away
}

func (a *Authenticator) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.renderLogin(w, http.StatusOK, "")
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, problem.BadRequest, "method "+r.Method+" is not allowed on "+LoginPath+"; allowed: GET, HEAD, POST")
		return
	}
	// Login CSRF: another site must not log the browser in as itself.
	if o := r.Header.Get("Origin"); o != "" && !a.sameOrigin(r, o) {
		a.renderLogin(w, http.StatusForbidden, "Sign-in refused: the form was sent from another site ("+o+").")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	role, ok := a.roleOf(strings.TrimSpace(r.PostFormValue("token")))
	if !ok {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "login refused", slog.String("remote", r.RemoteAddr))
		a.renderLogin(w, http.StatusUnauthorized, "That token is not valid. Copy it again from operator.token or viewer.token.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    a.newSession(role),
		Path:     "/",
		Expires:  a.now().Add(a.ttl),
		MaxAge:   int(a.ttl / time.Second),
		HttpOnly: true,
		Secure:   a.secure,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *Authenticator) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, problem.BadRequest, "method "+r.Method+" is not allowed on "+LogoutPath+"; allowed: POST")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !a.sameOrigin(r, o) {
		writeError(w, http.StatusForbidden, problem.CrossOrigin, "refused: POST "+LogoutPath+" comes from origin "+o)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, LoginPath, http.StatusSeeOther)
}

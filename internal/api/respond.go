package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// maxBody bounds request bodies; the largest legitimate one is a list of
// catch-up error IDs.
const maxBody = 1 << 20

// writeJSON answers with v as indented JSON, readable with plain curl.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "erp->crm" stays readable
	if err := enc.Encode(v); err != nil {
		// Only unsupported values fail to encode; the view types have none.
		writeProblem(w, http.StatusInternalServerError, problem.Internal,
			"encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client has gone; nothing to do
}

func writeProblem(w http.ResponseWriter, status int, code problem.Code, msg string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(wire.ErrorBody{Error: wire.ErrorDetail{Code: string(code), Message: msg}}) // strings always encode
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf maps an error code to the HTTP status the API answers with.
func statusOf(code problem.Code) int {
	switch {
	case code == problem.MapNotFound:
		return http.StatusNotFound
	case code == problem.InvalidAction, code == problem.MapInvalid, code == problem.SchemaChanged:
		return http.StatusConflict
	case code == problem.BadRequest, strings.HasPrefix(string(code), "DW1"):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers with err. Coded errors keep their code and message;
// an uncoded error is an engine fault: it is logged and the client gets
// DW9000 without the internals.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *problem.Error
	if !errors.As(err, &pe) {
		s.log.LogAttrs(r.Context(), slog.LevelError, "api request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("error", err.Error()))
		writeProblem(w, http.StatusInternalServerError, problem.Internal,
			"internal error; the engine log has the detail, please report it")
		return
	}
	status := statusOf(pe.Code)
	if status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "api request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("code", string(pe.Code)), slog.String("error", err.Error()))
	}
	msg := pe.Message
	if pe.Err != nil {
		msg += ": " + pe.Err.Error()
	}
	writeProblem(w, status, pe.Code, msg)
}

// decodeBody parses the request body strictly into v: unknown fields,
// trailing data and bodies over maxBody are rejected. An empty body leaves
// v untouched when allowEmpty, and is an error otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return problem.New(problem.BadRequest, "request body is larger than %d bytes; send fewer ids or use {\"all\":true}", maxBody)
		}
		return problem.Wrap(problem.BadRequest, err, "read request body")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return nil
		}
		return problem.New(problem.BadRequest, "request body is required; see docs/API.md for %s %s", r.Method, r.Pattern)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.New(problem.BadRequest, "invalid request body: %v; see docs/API.md for the body of %s %s", err, r.Method, r.Pattern)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return problem.New(problem.BadRequest, "request body has data after the JSON object; send one object")
	}
	return nil
}

// queryLimit reads the limit query parameter: def when absent, otherwise
// an integer from 1 to max.
func queryLimit(r *http.Request, def, max int) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, problem.New(problem.BadRequest, "limit must be an integer from 1 to %d, got %q", max, raw)
	}
	return n, nil
}

// actor is who an action is recorded as in the activity log: the token
// that authenticated the request (auth.Identity.Actor), after the client's
// own name when it gives one in the X-Dualwrite-Actor header ("cli,
// operator token 1a2b3c4d"). The header alone can never pass for a token.
// Without authentication (a server built without auth.Wrap) the actor is
// the header's name, or "api".
func actor(r *http.Request) (string, error) {
	a := strings.TrimSpace(r.Header.Get(wire.ActorHeader))
	if len(a) > 32 || strings.ContainsFunc(a, func(c rune) bool { return c < 0x20 || c == 0x7f || c == ',' }) {
		return "", problem.New(problem.BadRequest, "%s must be at most 32 printable characters without commas", wire.ActorHeader)
	}
	id, ok := auth.FromContext(r.Context())
	switch {
	case ok && a != "":
		return a + ", " + id.Actor(), nil
	case ok:
		return id.Actor(), nil
	case a != "":
		return a, nil
	}
	return "api", nil
}

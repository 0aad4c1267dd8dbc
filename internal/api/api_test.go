package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/api"
	"github.com/dualwrite/dualwrite/internal/api/apitest"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var now = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	srv    *httptest.Server
	engine *apitest.Engine
	log    *syncBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{engine: apitest.New(now), log: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv = httptest.NewServer(api.New(f.engine, api.Options{Logger: logger, Version: "1.2.3-test"}).Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string, header http.Header) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb wire.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if eb.Error.Message == "" {
		t.Errorf("error body %s has no message", body)
	}
	return eb.Error.Code
}

func TestReadRoutesGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path string
		status     int
	}{
		{"health", "/api/v1/health", 200},
		{"maps_list", "/api/v1/maps", 200},
		{"map_show", "/api/v1/maps/customers", 200},
		{"map_show_invalid", "/api/v1/maps/invoices", 200},
		{"errors_init", "/api/v1/maps/orders/errors", 200},
		{"errors_init_limit", "/api/v1/maps/orders/errors?limit=2", 200},
		{"errors_init_empty", "/api/v1/maps/customers/errors", 200},
		{"errors_catchup", "/api/v1/maps/products/catchup-errors", 200},
		{"activity", "/api/v1/maps/customers/activity?limit=1", 200},
		{"error_not_found", "/api/v1/maps/nope", 404},
		{"error_bad_limit", "/api/v1/maps/orders/errors?limit=0", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			status, body := f.do(t, "GET", tt.path, "", nil)
			if status != tt.status {
				t.Errorf("status %d, want %d; body %s", status, tt.status, body)
			}
			golden(t, tt.name, body)
		})
	}
}

func TestListLimitKeepsTotal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, body := f.do(t, "GET", "/api/v1/maps/orders/errors?limit=5", "", nil)
	var el wire.ErrorList
	if err := json.Unmarshal(body, &el); err != nil {
		t.Fatal(err)
	}
	if len(el.Errors) != 5 || el.Total != 7 {
		t.Errorf("got %d errors of total %d, want 5 of 7", len(el.Errors), el.Total)
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string // for errors
		want                     string // a substring of the body, for successes
	}{
		{"stop running", "POST", "/api/v1/maps/customers/stop", "", 200, "", `"status": "Not running"`},
		{"run with options", "POST", "/api/v1/maps/orders/run", `{"with_related":true,"skip_initial_sync":true,"master":"right"}`, 200, "", `"acted": [`},
		{"run recommends related", "POST", "/api/v1/maps/orders/run", `{}`, 200, "", `"related": [`},
		{"run starts initial sync", "POST", "/api/v1/maps/orders/run", "", 200, "", `"status": "Initializing"`},
		{"run paused resumes", "POST", "/api/v1/maps/products/run", "", 200, "", `"status": "Resuming"`},
		{"run running is invalid", "POST", "/api/v1/maps/customers/run", "", 409, "DW2001", ""},
		{"run invalid map", "POST", "/api/v1/maps/invoices/run", "", 409, "DW2003", ""},
		{"run unknown map", "POST", "/api/v1/maps/nope/run", "", 404, "DW2002", ""},
		{"pause", "POST", "/api/v1/maps/customers/pause", `{"with_related":false}`, 200, "", `"status": "Paused"`},
		{"pause not running", "POST", "/api/v1/maps/orders/pause", "", 409, "DW2001", ""},
		{"stop paused is invalid", "POST", "/api/v1/maps/products/stop", "{}", 409, "DW2001", ""},
		{"stop stopped", "POST", "/api/v1/maps/orders/stop", "", 409, "DW2001", ""},
		{"rerun", "POST", "/api/v1/maps/orders/rerun", "", 200, "", `"retried": 7`},
		{"retry ids", "POST", "/api/v1/maps/products/catchup-errors/retry", `{"ids":[201]}`, 200, "", `"succeeded": 1`},
		{"retry all", "POST", "/api/v1/maps/products/catchup-errors/retry", `{"all":true}`, 200, "", `"retried": 2`},
		{"discard ids", "POST", "/api/v1/maps/products/catchup-errors/discard", `{"ids":[202]}`, 200, "", `"discarded": 1`},
		{"discard all", "POST", "/api/v1/maps/products/catchup-errors/discard", `{"all":true}`, 200, "", `"discarded": 2`},
		{"discard unknown map", "POST", "/api/v1/maps/nope/catchup-errors/discard", `{"all":true}`, 404, "DW2002", ""},
		{"activity default limit", "GET", "/api/v1/maps/customers/activity", "", 200, "", `"actor": "cli"`},
		{"activity unknown map", "GET", "/api/v1/maps/nope/activity", "", 404, "DW2002", ""},
		{"catchup errors unknown map", "GET", "/api/v1/maps/nope/catchup-errors", "", 404, "DW2002", ""},
		{"rerun unknown map", "POST", "/api/v1/maps/nope/rerun", "", 404, "DW2002", ""},
		{"unknown route", "GET", "/api/v1/nothing", "", 404, "DW2100", ""},
		{"wrong method", "GET", "/api/v1/maps/customers/run", "", 405, "DW2100", ""},
		{"wrong method on list", "DELETE", "/api/v1/maps", "", 405, "DW2100", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			status, body := f.do(t, tt.method, tt.path, tt.body, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body %s", status, tt.status, body)
			}
			if tt.code != "" {
				if got := errorCode(t, body); got != tt.code {
					t.Errorf("code %s, want %s; body %s", got, tt.code, body)
				}
				return
			}
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("body %s does not contain %s", body, tt.want)
			}
		})
	}
}

// TestStopAbortsInitialSync: Stop is allowed from Initializing (and
// Resuming), as the engine's lifecycle table says.
func TestStopAbortsInitialSync(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, step := range []struct{ path, want string }{
		{"/api/v1/maps/orders/run", `"status": "Initializing"`},
		{"/api/v1/maps/orders/stop", `"status": "Not running"`},
		{"/api/v1/maps/products/run", `"status": "Resuming"`},
		{"/api/v1/maps/products/stop", `"status": "Not running"`},
	} {
		status, body := f.do(t, "POST", step.path, "", nil)
		if status != 200 || !strings.Contains(string(body), step.want) {
			t.Fatalf("POST %s: %d %s, want %s", step.path, status, body, step.want)
		}
	}
}

func TestRunPassesOptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	status, body := f.do(t, "POST", "/api/v1/maps/orders/run", `{"with_related":true,"skip_initial_sync":true,"master":"right","actor":"forged"}`, nil)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	calls := f.engine.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls %+v", calls)
	}
	o := calls[0].Opts
	if !o.WithRelated || !o.SkipInitialSync || o.Master != "right" || o.Actor != "api" {
		t.Errorf("options %+v, want with_related, skip_initial_sync, master right, actor api (not the body's)", o)
	}
}

func TestSelectionPassesIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want []int64
	}{
		{`{"ids":[202,201]}`, []int64{202, 201}},
		{`{"all":true}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			for _, op := range []string{"retry", "discard"} {
				if status, body := f.do(t, "POST", "/api/v1/maps/products/catchup-errors/"+op, tt.body, nil); status != 200 {
					t.Fatalf("%s: status %d: %s", op, status, body)
				}
			}
			for _, c := range f.engine.Calls() {
				if !slices.Equal(c.IDs, tt.want) {
					t.Errorf("%s got ids %v, want %v", c.Method, c.IDs, tt.want)
				}
			}
		})
	}
}

func TestStrictBodies(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, path, body string }{
		{"unknown field run", "/api/v1/maps/orders/run", `{"with_relatd":true}`},
		{"wrong type run", "/api/v1/maps/orders/run", `{"with_related":"yes"}`},
		{"malformed run", "/api/v1/maps/orders/run", `{"with_related":`},
		{"trailing data", "/api/v1/maps/orders/run", `{} {}`},
		{"not an object", "/api/v1/maps/orders/run", `[1]`},
		{"unknown field pause", "/api/v1/maps/customers/pause", `{"related":true}`},
		{"stop takes no fields", "/api/v1/maps/customers/stop", `{"force":true}`},
		{"rerun takes no fields", "/api/v1/maps/orders/rerun", `{"all":true}`},
		{"retry empty body", "/api/v1/maps/products/catchup-errors/retry", ``},
		{"retry empty object", "/api/v1/maps/products/catchup-errors/retry", `{}`},
		{"retry all false", "/api/v1/maps/products/catchup-errors/retry", `{"all":false}`},
		{"retry both", "/api/v1/maps/products/catchup-errors/retry", `{"ids":[1],"all":true}`},
		{"retry bad id", "/api/v1/maps/products/catchup-errors/retry", `{"ids":[0]}`},
		{"discard unknown field", "/api/v1/maps/products/catchup-errors/discard", `{"id":[201]}`},
		{"discard empty", "/api/v1/maps/products/catchup-errors/discard", `{"ids":[]}`},
		{"too large", "/api/v1/maps/products/catchup-errors/discard", `{"ids":[` + strings.Repeat("1,", 600000) + `1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			status, body := f.do(t, "POST", tt.path, tt.body, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", status, body)
			}
			if code := errorCode(t, body); code != string(problem.BadRequest) {
				t.Errorf("code %s, want %s", code, problem.BadRequest)
			}
			if calls := f.engine.Calls(); len(calls) != 0 {
				t.Errorf("engine was called despite the bad body: %+v", calls)
			}
		})
	}
}

func TestQueryLimits(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"limit=abc", "limit=-1", "limit=0", "limit=10001"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			for _, p := range []string{"/errors", "/catchup-errors", "/activity"} {
				status, body := f.do(t, "GET", "/api/v1/maps/products"+p+"?"+q, "", nil)
				if status != 400 || errorCode(t, body) != "DW2100" {
					t.Errorf("%s?%s: status %d body %s, want 400 DW2100", p, q, status, body)
				}
			}
		})
	}
}

func TestActorHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   string
		status int
	}{
		{"", "api", 200},
		{"cli", "cli", 200},
		{"  ops-bot  ", "ops-bot", 200},
		{strings.Repeat("x", 65), "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			h := http.Header{}
			if tt.header != "" {
				h.Set(wire.ActorHeader, tt.header)
			}
			reqs := []struct{ path, body string }{
				{"/api/v1/maps/customers/pause", ""},
				{"/api/v1/maps/customers/run", ""},
				{"/api/v1/maps/customers/stop", ""},
				{"/api/v1/maps/orders/rerun", ""},
				{"/api/v1/maps/products/catchup-errors/retry", `{"ids":[201]}`},
				{"/api/v1/maps/products/catchup-errors/discard", `{"all":true}`},
			}
			for _, r := range reqs {
				if status, body := f.do(t, "POST", r.path, r.body, h); status != tt.status {
					t.Fatalf("%s: status %d, want %d: %s", r.path, status, tt.status, body)
				}
			}
			calls := f.engine.Calls()
			if tt.status != 200 {
				if len(calls) != 0 {
					t.Errorf("engine called with a bad actor: %+v", calls)
				}
				return
			}
			if len(calls) != len(reqs) {
				t.Fatalf("got %d calls, want %d", len(calls), len(reqs))
			}
			for _, c := range calls {
				if c.Actor != tt.want {
					t.Errorf("%s recorded actor %q, want %q", c.Method, c.Actor, tt.want)
				}
			}
		})
	}
}

func TestEngineErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"not found", problem.New(problem.MapNotFound, "map x not found"), 404, "DW2002", "map x not found"},
		{"invalid action", problem.New(problem.InvalidAction, "cannot pause"), 409, "DW2001", "cannot pause"},
		{"map invalid", problem.New(problem.MapInvalid, "fix it"), 409, "DW2003", "fix it"},
		{"config", problem.New(problem.ConfigInvalid, "bad field"), 400, "DW1002", "bad field"},
		{"wrapped config", fmt.Errorf("load: %w", problem.Wrap(problem.ConnectionFailed, errors.New("refused"), "cannot reach erp")), 400, "DW1000", "cannot reach erp: refused"},
		{"other coded", problem.New(problem.LogPurged, "resync the map"), 500, "DW2010", "resync the map"},
		{"uncoded", errors.New("secret internal detail"), 500, "DW9000", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.engine.Err = tt.err
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/api/v1/maps", ""},
				{"GET", "/api/v1/maps/customers", ""},
				{"POST", "/api/v1/maps/customers/run", ""},
				{"POST", "/api/v1/maps/customers/pause", ""},
				{"POST", "/api/v1/maps/customers/stop", ""},
				{"GET", "/api/v1/maps/customers/errors", ""},
				{"POST", "/api/v1/maps/customers/rerun", ""},
				{"GET", "/api/v1/maps/customers/catchup-errors", ""},
				{"POST", "/api/v1/maps/customers/catchup-errors/retry", `{"all":true}`},
				{"POST", "/api/v1/maps/customers/catchup-errors/discard", `{"all":true}`},
				{"GET", "/api/v1/maps/customers/activity", ""},
			} {
				status, body := f.do(t, r.method, r.path, r.body, nil)
				if status != tt.status {
					t.Errorf("%s %s: status %d, want %d", r.method, r.path, status, tt.status)
				}
				var eb wire.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil {
					t.Fatal(err)
				}
				if eb.Error.Code != tt.code || !strings.Contains(eb.Error.Message, tt.msg) {
					t.Errorf("%s %s: error %+v, want code %s message containing %q", r.method, r.path, eb.Error, tt.code, tt.msg)
				}
				if strings.Contains(eb.Error.Message, "secret") {
					t.Errorf("uncoded error leaked to the client: %s", body)
				}
			}
			if tt.status == 500 && !strings.Contains(f.log.String(), `"msg":"api request failed"`) {
				t.Errorf("500 not logged; log:\n%s", f.log.String())
			}
		})
	}
}

func TestPanicIs500(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.engine.Panic = "boom"
	status, body := f.do(t, "GET", "/api/v1/maps", "", nil)
	if status != 500 || errorCode(t, body) != "DW9000" {
		t.Errorf("status %d body %s, want 500 DW9000", status, body)
	}
	logs := f.log.String()
	if !strings.Contains(logs, `"msg":"api handler panicked"`) || !strings.Contains(logs, `"panic":"boom"`) {
		t.Errorf("panic not logged:\n%s", logs)
	}
	// The server survives.
	f.engine.Panic = nil
	if status, _ := f.do(t, "GET", "/api/v1/health", "", nil); status != 200 {
		t.Errorf("after a panic health answers %d", status)
	}
}

func TestRequestsLogged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.do(t, "GET", "/api/v1/maps/nope", "", nil)
	var rec struct {
		Level, Msg, Method, Path string
		Status                   int
		Duration                 *int64
	}
	found := false
	for line := range strings.SplitSeq(strings.TrimSpace(f.log.String()), "\n") {
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == "api request" {
			found = true
			if rec.Level != "DEBUG" || rec.Method != "GET" || rec.Path != "/api/v1/maps/nope" || rec.Status != 404 || rec.Duration == nil {
				t.Errorf("request log %+v", rec)
			}
		}
	}
	if !found {
		t.Errorf("no request log:\n%s", f.log.String())
	}
}

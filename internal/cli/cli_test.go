package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/api"
	"github.com/dualwrite/dualwrite/internal/api/apitest"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var now = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

type fixture struct {
	engine *apitest.Engine
	srv    *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{engine: apitest.New(now)}
	f.srv = httptest.NewServer(api.New(f.engine, api.Options{Version: "test"}).Handler())
	t.Cleanup(f.srv.Close)
	return f
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env Env, h Handlers, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env.Stdout, env.Stderr = &out, &errb
	if env.pollEvery == 0 {
		env.pollEvery = time.Millisecond
	}
	code := Run(t.Context(), args, env, h)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (f *fixture) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, Env{Server: f.srv.URL}, Handlers{}, args...)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update creates it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestOutputGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"maps_list", []string{"maps", "list"}, 0},
		{"maps_list_json", []string{"maps", "list", "--output", "json"}, 0},
		{"maps_show_stalled", []string{"maps", "show", "contacts"}, 0},
		{"maps_show", []string{"maps", "show", "customers"}, 0},
		{"maps_show_paused", []string{"maps", "show", "products"}, 0},
		{"maps_show_invalid", []string{"maps", "show", "invoices"}, 0},
		{"maps_show_json", []string{"maps", "show", "orders", "--output", "json"}, 0},
		{"maps_errors_top5", []string{"maps", "errors", "orders"}, 0},
		{"maps_errors_json", []string{"maps", "errors", "orders", "--output", "json"}, 0},
		{"maps_errors_catchup", []string{"maps", "errors", "products", "--catch-up"}, 0},
		{"maps_errors_none", []string{"maps", "errors", "customers"}, 0},
		{"maps_log", []string{"maps", "log", "customers"}, 0},
		{"maps_log_json", []string{"maps", "log", "customers", "--limit", "1", "--output", "json"}, 0},
		{"maps_run_recommends", []string{"maps", "run", "orders"}, 0},
		{"maps_run_with_related", []string{"maps", "run", "orders", "--with-related"}, 0},
		{"maps_run_json", []string{"maps", "run", "products", "--output", "json"}, 0},
		{"maps_pause", []string{"maps", "pause", "customers"}, 0},
		{"maps_stop", []string{"maps", "stop", "customers"}, 0},
		{"maps_stop_paused_invalid", []string{"maps", "stop", "products"}, 1},
		{"maps_rerun", []string{"maps", "rerun", "orders"}, 0},
		{"maps_retry", []string{"maps", "retry", "products", "201"}, 0},
		{"maps_discard_all", []string{"maps", "discard", "products", "--all"}, 0},
		{"maps_show_not_found", []string{"maps", "show", "nope"}, 1},
		{"maps_pause_invalid", []string{"maps", "pause", "orders"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			res := f.run(t, tt.args...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", res.code, tt.code, res.stderr)
			}
			golden(t, tt.name, res.stdout+res.stderr)
		})
	}
}

func TestErrorsTableShowsTopFive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res := f.run(t, "maps", "errors", "orders")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	// header, 5 rows, the "more" line
	if len(lines) != 7 || lines[6] != "2 more; use --output json for all" {
		t.Errorf("got %d lines:\n%s", len(lines), res.stdout)
	}
	if !strings.Contains(res.stdout, "SO-0014") || strings.Contains(res.stdout, "SO-0015") {
		t.Errorf("want rows SO-0010 to SO-0014 only:\n%s", res.stdout)
	}
	js := f.run(t, "maps", "errors", "orders", "--output", "json")
	if n := strings.Count(js.stdout, `"id":`); n != 7 {
		t.Errorf("JSON lists %d errors, want all 7", n)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			c.setup(&runner{}, fs)
			for _, h := range []string{"--help", "-h"} {
				args := append(strings.Fields(c.name), h)
				res := run(t, Env{}, Handlers{}, args...)
				if res.code != 0 || res.stderr != "" {
					t.Fatalf("%v: exit %d stderr %q", args, res.code, res.stderr)
				}
				for _, want := range []string{"Usage: dualwrite " + c.name, "Examples:", c.desc[:20]} {
					if !strings.Contains(res.stdout, want) {
						t.Errorf("%v help lacks %q:\n%s", args, want, res.stdout)
					}
				}
				fs.VisitAll(func(fl *flag.Flag) {
					if !strings.Contains(res.stdout, "--"+fl.Name) {
						t.Errorf("%v help does not mention --%s:\n%s", args, fl.Name, res.stdout)
					}
				})
			}
			// `dualwrite help maps run` is the same as `maps run --help`.
			a := run(t, Env{}, Handlers{}, append([]string{"help"}, strings.Fields(c.name)...)...)
			b := run(t, Env{}, Handlers{}, append(strings.Fields(c.name), "--help")...)
			if a.code != 0 || a.stdout != b.stdout {
				t.Errorf("help %s differs from %s --help", c.name, c.name)
			}
		})
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"maps", "--help"}, {"maps", "-h"}, {"help", "maps"}} {
		res := run(t, Env{}, Handlers{}, args...)
		if res.code != 0 || !strings.Contains(res.stdout, "Usage: dualwrite") || !strings.Contains(res.stdout, "Examples:") {
			t.Errorf("%v: exit %d stdout %s", args, res.code, res.stdout)
		}
		for _, c := range commands() {
			sub := c.name
			if args[len(args)-1] != "maps" && args[0] == "maps" {
				sub = strings.TrimPrefix(c.name, "maps ")
			}
			if (args[0] == "maps" || slices.Contains(args, "maps")) && !strings.HasPrefix(c.name, "maps ") {
				continue
			}
			if strings.Contains(c.name, " ") && !slices.Contains(args, "maps") {
				continue // the top level lists the group, not its commands
			}
			if !strings.Contains(res.stdout, strings.TrimPrefix(sub, "maps ")) {
				t.Errorf("%v does not list %s", args, c.name)
			}
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "Usage: dualwrite"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"maps"}, "maps needs a command"},
		{[]string{"maps", "frob"}, `unknown command "maps frob"`},
		{[]string{"maps", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"maps", "run", "customers", "--with-related=maybe"}, "invalid boolean value"},
		{[]string{"maps", "list", "--output", "yaml"}, `--output must be table or json, got "yaml"`},
		{[]string{"maps", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"maps", "show"}, "missing the map NAME"},
		{[]string{"maps", "show", "a", "b"}, "expected one map NAME"},
		{[]string{"maps", "retry", "products"}, "give the error IDs to act on, or --all"},
		{[]string{"maps", "retry", "products", "--all", "201"}, "not both"},
		{[]string{"maps", "discard", "products", "x1"}, `"x1" is not an error ID`},
		{[]string{"maps", "discard"}, "missing the map NAME"},
		{[]string{"maps", "log", "customers", "--limit", "0"}, "--limit must be from 1 to 10000"},
		{[]string{"maps", "log", "customers", "--limit"}, "flag needs an argument"},
		{[]string{"maps", "list", "--server", "127.0.0.1:7070"}, "is not an http:// or https:// URL"},
		{[]string{"serve"}, "--config FILE is required"},
		{[]string{"validate"}, "expected one configuration FILE"},
		{[]string{"validate", "a.yaml", "--output", "xml"}, "--output must be text or json"},
		{[]string{"demo", "--left-driver", "postgres"}, "--left-driver and --left-dsn go together"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			called := false
			h := Handlers{
				Serve: func(context.Context, string, *slog.Logger) error { called = true; return nil },
				Validate: func(context.Context, string, io.Writer, bool) (int, error) {
					called = true
					return 0, nil
				},
				Demo: func(context.Context, DemoOptions) error { called = true; return nil },
			}
			// No server is listening: a usage error must be found before any call.
			res := run(t, Env{Server: "http://127.0.0.1:1"}, h, tt.args...)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", res.code, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", res.stderr, tt.want)
			}
			if called {
				t.Error("a handler ran despite the usage error")
			}
		})
	}
}

func TestEngineUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	for _, args := range [][]string{{"maps", "list"}, {"maps", "run", "customers", "--wait"}, {"maps", "retry", "p", "--all"}} {
		res := run(t, Env{Server: url}, Handlers{}, args...)
		want := "error: DW2101 cannot reach the engine at " + url + ": is `dualwrite serve` running?"
		if res.code != 1 || !strings.HasPrefix(res.stderr, want) {
			t.Errorf("%v: exit %d stderr %q, want exit 1 and %q", args, res.code, res.stderr, want)
		}
	}
	// --server beats Env.Server.
	f := newFixture(t)
	res := run(t, Env{Server: url}, Handlers{}, "maps", "list", "--server", f.srv.URL)
	if res.code != 0 {
		t.Errorf("--server not used: exit %d %s", res.code, res.stderr)
	}
}

func TestNotDualwriteServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/maps" {
			w.Write([]byte("<html>hello</html>"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{{"maps", "list"}, {"maps", "show", "x"}} {
		res := run(t, Env{Server: srv.URL}, Handlers{}, args...)
		if res.code != 1 || !strings.HasPrefix(res.stderr, "error: DW2102 ") {
			t.Errorf("%v: exit %d stderr %q", args, res.code, res.stderr)
		}
	}
}

func TestInterspersedFlags(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res := f.run(t, "maps", "run", "orders", "--with-related", "--skip-initial-sync", "--master", "right", "--server", f.srv.URL)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	res = f.run(t, "maps", "retry", "products", "201", "--output", "json", "202")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	res = f.run(t, "maps", "show", "--", "-odd-name")
	if res.code != 1 || !strings.Contains(res.stderr, "DW2002") {
		t.Errorf("-- did not end flags: exit %d %s", res.code, res.stderr)
	}
	calls := f.engine.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls %+v", calls)
	}
	if o := calls[0].Opts; !o.WithRelated || !o.SkipInitialSync || o.Master != "right" {
		t.Errorf("run options %+v", o)
	}
	if !slices.Equal(calls[1].IDs, []int64{201, 202}) {
		t.Errorf("retry ids %v, want [201 202]", calls[1].IDs)
	}
	for _, c := range calls {
		if c.Actor != "cli" {
			t.Errorf("%s recorded actor %q, want cli", c.Method, c.Actor)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		pos     []string
		verbose bool
		n       int
	}{
		{[]string{"a", "-v", "b"}, []string{"a", "b"}, true, 0},
		{[]string{"-n", "3", "a"}, []string{"a"}, false, 3},
		{[]string{"a", "--n=4", "b", "c", "-v"}, []string{"a", "b", "c"}, true, 4},
		{[]string{"a", "--", "-v", "b"}, []string{"a", "-v", "b"}, false, 0},
		{nil, nil, false, 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			v := fs.Bool("v", false, "")
			n := fs.Int("n", 0, "")
			pos, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tt.pos) || *v != tt.verbose || *n != tt.n {
				t.Errorf("got %q v=%v n=%d, want %q v=%v n=%d", pos, *v, *n, tt.pos, tt.verbose, tt.n)
			}
		})
	}
}

func TestRunWait(t *testing.T) {
	t.Parallel()
	t.Run("plain lines", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.engine.InitStep = 500 // 2000 rows: 4 polls in Initializing
		res := f.run(t, "maps", "run", "orders", "--wait")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
		if len(lines) != 4 || strings.Contains(res.stderr, "\r") {
			t.Fatalf("want 4 plain progress lines, got:\n%q", res.stderr)
		}
		line := regexp.MustCompile(`^orders: Initializing \[[=> ]{30}\] (\d+)/2000 rows +\d+% \d+ rows/s ETA \S+$`)
		for i, l := range lines {
			m := line.FindStringSubmatch(l)
			if m == nil || m[1] != []string{"0", "500", "1000", "1500"}[i] {
				t.Errorf("line %d %q", i, l)
			}
		}
		if !strings.Contains(res.stdout, "orders: Running\n") {
			t.Errorf("stdout %q does not end with the final status", res.stdout)
		}
	})
	t.Run("terminal bar", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.engine.InitStep = 1000
		res := run(t, Env{Server: f.srv.URL, IsTerminal: true}, Handlers{}, "maps", "run", "orders", "--wait")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		if strings.Count(res.stderr, "\r") != 2 || strings.Count(res.stderr, "\n") != 1 || !strings.HasSuffix(res.stderr, "\n") {
			t.Errorf("want 2 redraws with \\r and one final newline, got %q", res.stderr)
		}
	})
	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		res := f.run(t, "maps", "run", "products", "--wait", "--output", "json")
		if res.code != 0 || !strings.Contains(res.stderr, "products: Resuming, 1204 changes queued") ||
			!strings.Contains(res.stdout, `"status": "Resuming"`) || !strings.Contains(res.stdout, `"status": "Running"`) {
			t.Errorf("exit %d stdout %s stderr %s", res.code, res.stdout, res.stderr)
		}
	})
}

func TestRenderProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		done, total int64
		rate        float64
		width       int
		want        string
	}{
		{0, 2000, 0, 10, "[          ] 0/2000 rows   0% 0 rows/s ETA -"},
		{500, 2000, 250, 10, "[=>        ] 500/2000 rows  25% 250 rows/s ETA 6s"},
		{1000, 2000, 100, 4, "[=>  ] 1000/2000 rows  50% 100 rows/s ETA 10s"},
		{2000, 2000, 100, 4, "[====] 2000/2000 rows 100% 100 rows/s ETA 0s"},
		{2500, 2000, 100, 4, "[====] 2000/2000 rows 100% 100 rows/s ETA 0s"},
		{100, 3600 * 100, 100, 5, "[     ] 100/360000 rows   0% 100 rows/s ETA 59m59s"},
		{10, 0, 5, 3, "[   ] 10/0 rows   ?% 5 rows/s ETA -"},
		{-1, 10, 0, 0, "[ ] 0/10 rows   0% 0 rows/s ETA -"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := renderProgress(tt.done, tt.total, tt.rate, tt.width); got != tt.want {
				t.Errorf("renderProgress(%d, %d, %v, %d)\n got %q\nwant %q", tt.done, tt.total, tt.rate, tt.width, got, tt.want)
			}
		})
	}
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	t.Run("serve", func(t *testing.T) {
		t.Parallel()
		var got string
		h := Handlers{Serve: func(_ context.Context, p string, _ *slog.Logger) error { got = p; return nil }}
		if res := run(t, Env{}, h, "serve", "--config", "dw.yaml"); res.code != 0 || got != "dw.yaml" {
			t.Errorf("exit %d config %q", res.code, got)
		}
		h.Serve = func(context.Context, string, *slog.Logger) error {
			return problem.New(problem.ConfigSyntax, "dw.yaml:3:1: unknown field mapz; see docs/CONFIG.md")
		}
		res := run(t, Env{}, h, "serve", "--config", "dw.yaml")
		if res.code != 1 || res.stderr != "error: DW1001 dw.yaml:3:1: unknown field mapz; see docs/CONFIG.md\n" {
			t.Errorf("exit %d stderr %q", res.code, res.stderr)
		}
		h.Serve = func(context.Context, string, *slog.Logger) error { return errors.New("listen tcp: address in use") }
		res = run(t, Env{}, h, "serve", "--config", "dw.yaml")
		if res.code != 1 || res.stderr != "error: DW9000 listen tcp: address in use\n" {
			t.Errorf("exit %d stderr %q", res.code, res.stderr)
		}
		h.Serve = func(context.Context, string, *slog.Logger) error {
			return errors.Join(errors.New("start link"), problem.New(problem.ConnectionFailed, "cannot reach erp; check its dsn"))
		}
		res = run(t, Env{}, h, "serve", "--config", "dw.yaml")
		if res.code != 1 || !strings.HasPrefix(res.stderr, "error: DW1000 start link\ncannot reach erp") {
			t.Errorf("exit %d stderr %q", res.code, res.stderr)
		}
	})
	t.Run("validate", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args     []string
			problems int
			json     bool
			code     int
		}{
			{[]string{"validate", "dw.yaml"}, 0, false, 0},
			{[]string{"validate", "dw.yaml", "--output", "json"}, 0, true, 0},
			{[]string{"validate", "--output", "json", "dw.yaml"}, 2, true, 1},
		} {
			var gotPath string
			var gotJSON bool
			h := Handlers{Validate: func(_ context.Context, p string, out io.Writer, asJSON bool) (int, error) {
				gotPath, gotJSON = p, asJSON
				io.WriteString(out, "report\n")
				return tt.problems, nil
			}}
			res := run(t, Env{}, h, tt.args...)
			if res.code != tt.code || gotPath != "dw.yaml" || gotJSON != tt.json || res.stdout != "report\n" || res.stderr != "" {
				t.Errorf("%v: exit %d path %q json %v stdout %q stderr %q", tt.args, res.code, gotPath, gotJSON, res.stdout, res.stderr)
			}
		}
	})
	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		var got DemoOptions
		h := Handlers{Demo: func(_ context.Context, o DemoOptions) error { got = o; return nil }}
		res := run(t, Env{}, h, "demo", "--dir", "/tmp/d", "--once", "--listen", ":9000",
			"--left-driver", "postgres", "--left-dsn", "postgres://x", "--right-driver", "mysql", "--right-dsn", "root@tcp(x)/crm")
		if res.code != 0 || got.Dir != "/tmp/d" || !got.Once || got.Listen != ":9000" || got.LeftDriver != "postgres" ||
			got.LeftDSN != "postgres://x" || got.RightDriver != "mysql" || got.RightDSN != "root@tcp(x)/crm" || got.Out == nil {
			t.Errorf("exit %d options %+v", res.code, got)
		}
		res = run(t, Env{}, h, "demo")
		if res.code != 0 || got.Listen != "127.0.0.1:7070" || got.Once {
			t.Errorf("defaults: exit %d options %+v", res.code, got)
		}
	})
	t.Run("missing handler", func(t *testing.T) {
		t.Parallel()
		res := run(t, Env{}, Handlers{}, "demo")
		if res.code != 1 || !strings.HasPrefix(res.stderr, "error: DW9000 demo is not available") {
			t.Errorf("exit %d stderr %q", res.code, res.stderr)
		}
	})
}

func TestInterruptedWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.engine.InitStep = 1 // would take 2000 polls
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"maps", "run", "orders", "--wait"}, Env{Server: f.srv.URL, Stdout: &out, Stderr: &errb, pollEvery: 5 * time.Millisecond}, Handlers{})
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	if code := <-done; code != 1 || !strings.Contains(errb.String(), "interrupted: stopped waiting for map orders (it carries on)") {
		t.Errorf("exit %d stderr %q", code, errb.String())
	}
}

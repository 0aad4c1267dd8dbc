package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/wire"
)

func TestVersionAndLogFlags(t *testing.T) {
	t.Parallel()
	if res := run(t, Env{Version: "1.4.0"}, Handlers{}, "--version"); res.code != 0 || res.stdout != "dualwrite 1.4.0\n" {
		t.Errorf("--version: %d %q", res.code, res.stdout)
	}
	var got *slog.Logger
	h := Handlers{Serve: func(_ context.Context, _ string, log *slog.Logger) error {
		got = log
		log.Debug("probe", "k", "v")
		return nil
	}}
	for _, tc := range []struct {
		args    []string
		env     Logging
		code    int
		logged  string // a fragment of stderr
		refused string
	}{
		{[]string{"--log-format", "json", "--log-level", "debug", "serve", "--config", "x.yaml"}, Logging{}, 0, `"msg":"probe"`, ""},
		{[]string{"serve", "--config", "x.yaml", "--log-format=json", "--log-level=debug"}, Logging{}, 0, `"k":"v"`, ""},
		{[]string{"serve", "--config", "x.yaml"}, Logging{Format: "text", Level: "debug"}, 0, "msg=probe", ""},
		{[]string{"serve", "--config", "x.yaml"}, Logging{}, 0, "", ""}, // info: the debug record is dropped
		{[]string{"--log-format", "xml", "serve", "--config", "x.yaml"}, Logging{}, 2, "", `--log-format "xml" is not a format`},
		{[]string{"serve", "--config", "x.yaml", "--log-level", "loud"}, Logging{}, 2, "", `--log-level "loud" is not a level`},
		{[]string{"--nosuch", "serve"}, Logging{}, 2, "", "flag provided but not defined"},
	} {
		got = nil
		res := run(t, Env{Logging: tc.env}, h, tc.args...)
		if res.code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, res.code, tc.code, res.stderr)
			continue
		}
		if tc.refused != "" {
			if !strings.Contains(res.stderr, tc.refused) || got != nil {
				t.Errorf("%v: stderr %q, want %q and no serve", tc.args, res.stderr, tc.refused)
			}
			continue
		}
		if tc.logged == "" && res.stderr != "" {
			t.Errorf("%v: logged %q at info level", tc.args, res.stderr)
		}
		if !strings.Contains(res.stderr, tc.logged) {
			t.Errorf("%v: stderr %q lacks %s", tc.args, res.stderr, tc.logged)
		}
	}
}

// TestTokenFromConfiguration: on the engine's machine the maps commands
// find the address and the token through the configuration; a flag wins.
func TestTokenFromConfiguration(t *testing.T) {
	t.Parallel()
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"maps": []any{}})
	}))
	defer srv.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "state")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	tok := "dwo_" + strings.Repeat("ab", 32)
	if err := os.WriteFile(filepath.Join(data, "operator.token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dw.yaml")
	yaml := "link:\n  name: t\n  left: {name: erp, driver: sqlite, dsn: ./erp.db}\n  right: {name: crm, driver: sqlite, dsn: ./crm.db}\n" +
		"engine:\n  data_dir: state\n  listen: " + strings.TrimPrefix(srv.URL, "http://") + "\nmaps: []\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := run(t, Env{Config: cfg}, Handlers{}, "maps", "list"); res.code != 0 {
		t.Fatalf("maps list via the configuration: %d %s", res.code, res.stderr)
	}
	if res := run(t, Env{Config: cfg, Token: "from-env"}, Handlers{}, "maps", "list", "--token", "from-flag"); res.code != 0 {
		t.Fatalf("maps list --token: %d %s", res.code, res.stderr)
	}
	if len(seen) != 2 || seen[0] != "Bearer "+tok || seen[1] != "Bearer from-flag" {
		t.Errorf("authorization headers %q", seen)
	}
}

func TestStatusShowsFailedStarts(t *testing.T) {
	t.Parallel()
	m := wire.MapView{Status: wire.Initializing, InitRowsDone: 10, InitRowsTotal: 40, StartFailures: 3, LastStartError: "count item on crm: no such table"}
	if got := formatStatus(m); got != "Initializing 25% (3 failed starts)" {
		t.Errorf("formatStatus = %q", got)
	}
	var b strings.Builder
	if err := writeMapDetail(&b, m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Failed starts:    3 in a row; last: count item on crm: no such table") {
		t.Errorf("show:\n%s", b.String())
	}
}

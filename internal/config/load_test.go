package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		code problem.Code
		path string
		at   at
		msg  string
	}{
		{
			name: "unknown field",
			src: header + `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    colums: [{left: id, right: id}]
`,
			code: problem.ConfigSyntax, path: "maps[0].colums", at: at{10, "colums"}, msg: `unknown field "colums" (did you mean "columns"?)`,
		},
		{
			name: "unknown field in a flow mapping",
			src: header + `  - {name: m, left: a, right: b, key: [{left: id, right: id, compnay: true}]}
`,
			code: problem.ConfigSyntax, path: "maps[0].key[0].compnay", at: at{6, "compnay"}, msg: `did you mean "company"?`,
		},
		{
			name: "unknown top-level field",
			src:  "links:\n  name: x\n",
			code: problem.ConfigSyntax, path: "links", at: at{1, "links"}, msg: `unknown field "links" (did you mean "link"?); the fields here are link, engine, maps`,
		},
		{
			name: "duplicate key",
			src: header + `  - name: m
    left: a
    left: b
`,
			code: problem.ConfigSyntax, path: "maps[0].left", at: at{8, "left"}, msg: `duplicate key "left" (first at line 7)`,
		},
		{
			name: "duplicate value_map key",
			src: header + `  - name: m
    columns:
      - {left: t, right: t, value_map: {A: "1", A: "2"}}
`,
			code: problem.ConfigSyntax, path: "maps[0].columns[0].value_map.A", at: at{8, `A: "2"`}, msg: `duplicate key "A"`,
		},
		{
			name: "syntax error",
			src: `link:
  name: t
   bad: indentation
`,
			code: problem.ConfigSyntax, path: "", at: at{3, "bad"}, msg: "invalid YAML: mapping values are not allowed in this context",
		},
		{
			name: "tab indentation",
			src:  "link:\n\tname: t\n",
			code: problem.ConfigSyntax, path: "", at: at{2, "name"}, msg: "not tabs",
		},
		{
			name: "list expected",
			src:  header + "  - {name: m, key: {left: id, right: id}}\n",
			code: problem.ConfigSyntax, path: "maps[0].key", at: at{6, "{left"}, msg: "key must be a list, found a mapping",
		},
		{
			name: "text expected",
			src:  header + "  - name: [a, b]\n",
			code: problem.ConfigSyntax, path: "maps[0].name", at: at{6, "[a"}, msg: "name must be a text value, found a list",
		},
		{
			name: "whole number expected",
			src:  "engine:\n  chunk_size: lots\n",
			code: problem.ConfigSyntax, path: "engine.chunk_size", at: at{2, "lots"}, msg: `chunk_size must be a whole number, found "lots"`,
		},
		{
			name: "boolean expected",
			src:  header + "  - {name: m, initial_sync: maybe}\n",
			code: problem.ConfigSyntax, path: "maps[0].initial_sync", at: at{6, "maybe"}, msg: "initial_sync must be true or false",
		},
		{
			name: "bad duration",
			src:  "engine:\n  queue_retention: 1 day\n",
			code: problem.ConfigSyntax, path: "engine.queue_retention", at: at{2, "1 day"}, msg: `queue_retention must be a duration such as "24h"`,
		},
		{
			name: "default not a scalar",
			src:  header + "  - {name: m, columns: [{left: a, right: a, default: [1]}]}\n",
			code: problem.ConfigSyntax, path: "maps[0].columns[0].default", at: at{6, "[1]"}, msg: "default must be a single value",
		},
		{
			name: "value_map to null",
			src:  header + "  - {name: m, columns: [{left: a, right: a, value_map: {x: null}}]}\n",
			code: problem.ConfigSyntax, path: "maps[0].columns[0].value_map.x", at: at{6, "null"}, msg: `"x" must map to a single value, found null`,
		},
		{
			name: "two documents",
			src:  "link: {name: a}\n---\nlink: {name: b}\n",
			code: problem.ConfigSyntax, path: "", at: at{2, "---"}, msg: "more than one YAML document",
		},
		{
			name: "empty file",
			src:  "# nothing\n",
			code: problem.ConfigSyntax, path: "", at: at{1, "#"}, msg: "the file is empty",
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			code: problem.ConfigSyntax, path: "", at: at{1, "-"}, msg: "the file must be a mapping with link, engine and maps, found a list",
		},
		{
			name: "unset environment variable",
			src:  "link:\n  left: {dsn: 'postgres://u:${DUALWRITE_TEST_SURELY_UNSET}@h/db'}\n",
			code: problem.ConfigInvalid, path: "link.left.dsn", at: at{2, "'postgres"}, msg: "environment variable DUALWRITE_TEST_SURELY_UNSET is not set",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("test.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if got := problem.CodeOf(err); got != tc.code {
				t.Errorf("code = %q, want %q (err: %v)", got, tc.code, err)
			}
			issues := IssuesOf(err)
			if len(issues) != 1 {
				t.Fatalf("want one issue, got %d: %v", len(issues), err)
			}
			is := issues[0]
			if want := tc.at.pos(t, tc.src); is.Pos != want || is.Path != tc.path || is.Code != tc.code {
				t.Errorf("issue %s\nwant %s at %d:%d path %q", is, tc.code, want.Line, want.Column, tc.path)
			}
			if !strings.Contains(is.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", is.Message, tc.msg)
			}
			if !strings.Contains(err.Error(), "test.yaml:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseReportsEveryDecodeProblem(t *testing.T) {
	t.Parallel()
	src := `link:
  nme: x
engine:
  chunk_size: many
  poll_interval: soon
maps:
  - {name: m, extra: 1}
`
	_, err := Parse("test.yaml", []byte(src))
	got := IssuesOf(err)
	want := []string{"test.yaml:2:3: DW1001 link.nme", "test.yaml:4:15: DW1001 engine.chunk_size", "test.yaml:5:18: DW1001 engine.poll_interval", "test.yaml:7:15: DW1001 maps[0].extra"}
	if len(got) != len(want) {
		t.Fatalf("got %d issues, want %d: %v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i].String(), want[i]+": ") {
			t.Errorf("issue %d = %s, want prefix %s", i, got[i], want[i])
		}
	}
	if !strings.HasPrefix(err.Error(), "DW1001 test.yaml has 4 problems; fix and try again: \ntest.yaml:2:3: DW1001 link.nme") {
		t.Errorf("error text = %q", err)
	}
}

func TestDecodeValues(t *testing.T) {
	t.Parallel()
	c := mustParse(t, header+`  - name: m
    left: a
    right: b
    initial_sync: false
    key: [{left: id, right: id, company: true}]
    columns:
      - {left: id, right: id}
      - {left: a, right: a, default: null}
      - {left: b, right: b, default: 0}
      - {left: c, right: c, default: 2.5}
      - {left: d, right: d, default: "x"}
      - {left: e, right: e, default: true}
      - {left: f, right: f, default: 2024-01-02}
      - {left: g, right: g}
      - {left: h, right: h, value_map: {Z: 1, A: two, M: true}}
`)
	m := c.Maps[0]
	if *m.InitialSync {
		t.Error("initial_sync: false was not kept")
	}
	if !m.Key[0].Company {
		t.Error("company: true was not kept")
	}
	wantDefaults := []struct {
		has bool
		v   any
	}{{false, nil}, {true, nil}, {true, int64(0)}, {true, 2.5}, {true, "x"}, {true, true}, {true, "2024-01-02"}, {false, nil}}
	for i, w := range wantDefaults {
		col := m.Columns[i]
		if col.HasDefault != w.has || !reflect.DeepEqual(col.Default, w.v) {
			t.Errorf("columns[%d] default = %v (%T) has=%v, want %v (%T) has=%v", i, col.Default, col.Default, col.HasDefault, w.v, w.v, w.has)
		}
	}
	vm := m.Columns[8]
	if want := [][2]string{{"Z", "1"}, {"A", "two"}, {"M", "true"}}; !reflect.DeepEqual(vm.ValueMapPairs, want) {
		t.Errorf("ValueMapPairs = %v, want %v (file order)", vm.ValueMapPairs, want)
	}
	if want := map[string]string{"Z": "1", "A": "two", "M": "true"}; !reflect.DeepEqual(vm.ValueMap, want) {
		t.Errorf("ValueMap = %v, want %v", vm.ValueMap, want)
	}
	if m.Pos != (Pos{6, 5}) || m.Key[0].Pos != (Pos{10, 11}) || m.Columns[1].Pos != (Pos{13, 9}) {
		t.Errorf("positions: map %v key %v column %v", m.Pos, m.Key[0].Pos, m.Columns[1].Pos)
	}
	if c.Link.Pos != (Pos{2, 3}) || c.Link.Left.Pos != (Pos{3, 9}) {
		t.Errorf("positions: link %v left %v", c.Link.Pos, c.Link.Left.Pos)
	}
	if got := c.PosOf("maps[0].columns[8].value_map.A"); got != (Pos{20, 50}) {
		t.Errorf("PosOf(value_map.A) = %v", got)
	}
	if got := c.PosOf("maps[0].columns[7].left_to_right"); got != m.Columns[7].Pos {
		t.Errorf("PosOf falls back to the enclosing value: got %v, want %v", got, m.Columns[7].Pos)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `link:
  name: t
  left: &side {name: erp, driver: postgres, dsn: "postgres://x"}
  right:
    <<: *side
    name: crm
maps: []
`)
	if r := c.Link.Right; r.Name != "crm" || r.Driver != "postgres" || r.DSN != "postgres://x" {
		t.Errorf("merged side = %+v", r)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: "file:erp.db?_pragma=busy_timeout(5000)"}
  right: {name: crm, driver: sqlite, dsn: ":memory:"}
engine:
  queue_retention: 8h
maps:
  - {name: a, left: a, right: a, order: 7}
  - name: b
    left: b
    right: b
    direction: left_to_right
    columns:
      - {left: x, right: x}
      - {right: y, default: 1}
    lookups: [{map: a, left: ra, right: ra}]
  - name: c
    left: c
    right: c
    columns:
      - {left: x, right: x}
      - {right: y, default: 1}
      - {left: z, default: 1}
      - {left: w, right: w, direction: right_to_left}
`)
	wantDir, _ := filepath.Abs(".dualwrite")
	e := c.Engine
	if e.DataDir != wantDir || e.Listen != DefaultListen || e.QueueRetention.D() != 8*time.Hour || e.QueueWarnAt.D() != 6*time.Hour ||
		e.PollInterval.D() != DefaultPollInterval || e.ChunkSize != DefaultChunkSize || e.RetainedLogWarn != DefaultRetainedLogWarn || e.QueueURL != "" {
		t.Errorf("engine defaults = %+v", e)
	}
	wantDSN, _ := filepath.Abs("erp.db")
	if c.Link.Left.DSN != "file:"+wantDSN+"?_pragma=busy_timeout(5000)" || c.Link.Right.DSN != ":memory:" {
		t.Errorf("sqlite DSNs = %q, %q", c.Link.Left.DSN, c.Link.Right.DSN)
	}
	if got := []int{c.Maps[0].Order, c.Maps[1].Order, c.Maps[2].Order}; !reflect.DeepEqual(got, []int{7, 1, 2}) {
		t.Errorf("orders = %v, want explicit 7 then file positions 1, 2", got)
	}
	a, b, cm := c.Maps[0], c.Maps[1], c.Maps[2]
	if a.Direction != Both || a.Master != "right" || a.InitialSync == nil || !*a.InitialSync {
		t.Errorf("map defaults = %+v", a)
	}
	if b.Columns[0].Direction != LeftToRight || b.Columns[1].Direction != LeftToRight || b.Lookups[0].Direction != LeftToRight {
		t.Errorf("a one-way map's columns and lookups inherit its direction: %+v %+v", b.Columns, b.Lookups)
	}
	if got := []Direction{cm.Columns[0].Direction, cm.Columns[1].Direction, cm.Columns[2].Direction, cm.Columns[3].Direction}; !reflect.DeepEqual(got, []Direction{Both, LeftToRight, RightToLeft, RightToLeft}) {
		t.Errorf("column directions = %v", got)
	}
	if !a.Bidirectional() || b.Bidirectional() {
		t.Error("Bidirectional is wrong")
	}
	before, _ := c.Marshal()
	c.ApplyDefaults()
	after, _ := c.Marshal()
	if string(before) != string(after) {
		t.Errorf("ApplyDefaults is not idempotent:\n%s\n---\n%s", before, after)
	}
}

func TestDataDirBesideTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "erp-crm.yaml")
	src := "link:\n  left: {name: erp, driver: sqlite, dsn: ./erp.db}\nengine: {data_dir: state}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine.DataDir != filepath.Join(dir, "state") || c.Link.Left.DSN != filepath.Join(dir, "erp.db") || c.File != path {
		t.Errorf("data_dir %q, dsn %q, file %q; want them in %s", c.Engine.DataDir, c.Link.Left.DSN, c.File, dir)
	}
	c, err = Parse(path, []byte("link: {name: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine.DataDir != filepath.Join(dir, DefaultDataDir) {
		t.Errorf("default data_dir = %q, want %s", c.Engine.DataDir, filepath.Join(dir, DefaultDataDir))
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if problem.CodeOf(err) != problem.ConfigSyntax || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("err = %v", err)
	}
}

// TestEnvironmentExpansion sets the environment, so it does not run in
// parallel.
func TestEnvironmentExpansion(t *testing.T) {
	t.Setenv("DW_TEST_PASSWORD", "s3cret")
	c := mustParse(t, `link:
  left: {name: a, driver: postgres, dsn: "postgres://u:${DW_TEST_PASSWORD}@127.0.0.1/db?x=$$HOME"}
  right: {name: b, driver: mysql, dsn: "root:$DW_TEST_PASSWORD@tcp(127.0.0.1)/db"}
engine: {queue_url: "nats://${DW_TEST_PASSWORD}@127.0.0.1:4222"}
`)
	if got, want := c.Link.Left.DSN, "postgres://u:s3cret@127.0.0.1/db?x=$HOME"; got != want {
		t.Errorf("left dsn = %q, want %q", got, want)
	}
	if got, want := c.Link.Right.DSN, "root:$DW_TEST_PASSWORD@tcp(127.0.0.1)/db"; got != want {
		t.Errorf("only ${VAR} is expanded: right dsn = %q, want %q", got, want)
	}
	if got, want := c.Engine.QueueURL, "nats://s3cret@127.0.0.1:4222"; got != want {
		t.Errorf("queue_url = %q, want %q", got, want)
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./erp.db}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
maps:
  - {name: a, left: a, right: a, master: erp}
  - {name: b, left: b, right: b, master: crm, depends_on: [a, c, a]}
  - {name: c, left: c, right: c, master: left, lookups: [{map: a}, {map: c}, {map: b}]}
  - {name: d, left: d, right: d}
`)
	if c.MapByName("c") != &c.Maps[2] || c.MapByName("zz") != nil {
		t.Error("MapByName")
	}
	if got := c.Dependencies("b"); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("Dependencies(b) = %v", got)
	}
	if got := c.Dependencies("c"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Dependencies(c) = %v", got)
	}
	if got := c.Dependencies("nope"); got != nil {
		t.Errorf("Dependencies(nope) = %v", got)
	}
	var sides []string
	for i := range c.Maps {
		sides = append(sides, c.Maps[i].MasterSide(c))
	}
	if want := []string{"left", "right", "left", "right"}; !reflect.DeepEqual(sides, want) {
		t.Errorf("MasterSide = %v, want %v", sides, want)
	}
}

// TestRoundTrip marshals every valid configuration and parses it back.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/valid/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(f, out)
			if err != nil {
				t.Fatalf("parse marshalled config: %v\n%s", err, out)
			}
			if a, b := stripPositions(c), stripPositions(again); !reflect.DeepEqual(a, b) {
				t.Errorf("round trip changed the configuration:\nfirst  %+v\nsecond %+v\nyaml:\n%s", a, b, out)
			}
		})
	}
}

func TestFullConfigValues(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/valid/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Engine
	if e.DataDir != "/var/lib/dualwrite" || e.Listen != "0.0.0.0:8080" || e.QueueRetention.D() != 48*time.Hour || e.QueueWarnAt.D() != 12*time.Hour ||
		e.PollInterval.D() != 250*time.Millisecond || e.QueueURL != "nats://127.0.0.1:4222" || e.ChunkSize != 500 || e.RetainedLogWarn != 2147483648 ||
		e.TLSCert != "/etc/dualwrite/cert.pem" || e.TLSKey != "/etc/dualwrite/key.pem" || !e.TLS() || e.InsecureListen {
		t.Errorf("engine = %+v", e)
	}
	cur := c.MapByName("currencies")
	if cur.Direction != LeftToRight || cur.Master != "erp" || cur.MasterSide(c) != "left" || *cur.InitialSync || cur.Order != 5 {
		t.Errorf("currencies = %+v", cur)
	}
	cust := c.MapByName("customers")
	if cust.Filter.Left != "blocked != 1" || cust.Filter.Right != "statecode == 0" || cust.Lookups[0].LeftRef.One() != "currencycode" {
		t.Errorf("customers = %+v", cust)
	}
	if col := cust.Columns[3]; col.LeftToRight != "blocked == 1 ? 1 : 0" || col.RightToLeft != "statecode == 1 ? 1 : 0" || col.Default != false {
		t.Errorf("expression column = %+v", col)
	}
	if a := cust.Alerts; len(a) != 6 || a[0].String() != "10 errors in 15m → pause" || a[1].Notify[0] != "ops-mail" || a[1].Action != AlertNotify ||
		a[2].RetentionPercent != 50 || a[3].RetainedLogAbove != 2147483648 || a[4].StalledAfter.D() != 10*time.Minute || a[5].Action != AlertStop {
		t.Errorf("alerts = %+v", a)
	}
	if n := c.Notify; len(n.Webhooks) != 1 || n.Webhooks[0].Format != WebhookSlack || len(n.Email) != 1 || n.Email[0].To[1] != "erp-team@example.com" || n.Email[0].Password != "secret" {
		t.Errorf("notify = %+v", n)
	}
	if issues := c.Validate(); len(issues) != 0 {
		t.Errorf("full.yaml has issues:\n%s", Issues(issues).Error())
	}
}

func stripPositions(c *Config) Config {
	out := *c
	out.positions = nil
	out.Link.Pos, out.Link.Left.Pos, out.Link.Right.Pos = Pos{}, Pos{}, Pos{}
	out.Maps = append([]Map(nil), c.Maps...)
	for i := range out.Maps {
		m := &out.Maps[i]
		m.Pos, m.Filter.Pos = Pos{}, Pos{}
		m.Key = append([]KeyColumn(nil), m.Key...)
		for j := range m.Key {
			m.Key[j].Pos = Pos{}
		}
		m.Columns = append([]ColumnMap(nil), m.Columns...)
		for j := range m.Columns {
			m.Columns[j].Pos = Pos{}
		}
		m.Lookups = append([]Lookup(nil), m.Lookups...)
		for j := range m.Lookups {
			m.Lookups[j].Pos = Pos{}
		}
		m.Alerts = append([]AlertRule(nil), m.Alerts...)
		for j := range m.Alerts {
			m.Alerts[j].Pos = Pos{}
		}
	}
	out.Notify.Pos = Pos{}
	out.Notify.Webhooks = append([]Webhook(nil), c.Notify.Webhooks...)
	for j := range out.Notify.Webhooks {
		out.Notify.Webhooks[j].Pos = Pos{}
	}
	out.Notify.Email = append([]Email(nil), c.Notify.Email...)
	for j := range out.Notify.Email {
		out.Notify.Email[j].Pos = Pos{}
	}
	return out
}

// TestGoldenIssues renders the issues of a bad configuration. Run with
// -update to rewrite testdata/bad.golden after an intended change.
func TestGoldenIssues(t *testing.T) {
	t.Parallel()
	const in, golden = "testdata/bad.yaml", "testdata/bad.golden"
	c, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	issues := c.Validate()
	if len(issues) < 10 {
		t.Fatalf("bad.yaml should show many issues, got %d", len(issues))
	}
	var b strings.Builder
	for _, is := range issues {
		b.WriteString(is.String() + "\n")
	}
	got := b.String()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v; run go test ./internal/config -run Golden -update", err)
	}
	if got != string(want) {
		t.Errorf("issues differ from %s (run with -update if intended):\n%s", golden, got)
	}
}

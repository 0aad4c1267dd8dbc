package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// header is the start of every test configuration; maps begin on line 6.
const header = `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./erp.db}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
maps:
`

// at names an expected position: the line, and the text that starts at the
// expected column on that line.
type at struct {
	line int
	text string
}

func (a at) pos(t *testing.T, src string) Pos {
	t.Helper()
	lines := strings.Split(src, "\n")
	if a.line < 1 || a.line > len(lines) {
		t.Fatalf("line %d is outside the test file", a.line)
	}
	col := strings.Index(lines[a.line-1], a.text)
	if col < 0 {
		t.Fatalf("line %d %q does not contain %q", a.line, lines[a.line-1], a.text)
	}
	return Pos{Line: a.line, Column: col + 1}
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestValidateChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string // whole file when it starts with "link:", else maps after header
		code problem.Code
		path string
		at   at
		msg  string // a fragment of the message
	}{
		{
			name: "link name missing",
			src: `link:
  left: {name: erp, driver: sqlite, dsn: ./erp.db}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
maps: []
`,
			code: problem.ConfigInvalid, path: "link.name", at: at{2, "left"}, msg: "link name is missing",
		},
		{
			name: "side name missing",
			src: `link:
  name: t
  left: {driver: sqlite, dsn: ./erp.db}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
`,
			code: problem.ConfigInvalid, path: "link.left.name", at: at{3, "{driver"}, msg: "side name is missing",
		},
		{
			name: "driver missing",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./erp.db}
  right: {name: crm, dsn: ./crm.db}
`,
			code: problem.ConfigInvalid, path: "link.right.driver", at: at{4, "{name"}, msg: "driver is missing",
		},
		{
			name: "driver unknown",
			src: `link:
  name: t
  left: {name: erp, driver: oracle, dsn: x}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
`,
			code: problem.ConfigInvalid, path: "link.left.driver", at: at{3, "oracle"}, msg: `driver "oracle" is not supported; use one of sqlite, postgres, mysql`,
		},
		{
			name: "dsn missing",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ""}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
`,
			code: problem.ConfigInvalid, path: "link.left.dsn", at: at{3, `""`}, msg: "dsn is missing",
		},
		{
			name: "same side names",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: erp, driver: sqlite, dsn: ./b.db}
`,
			code: problem.ConfigInvalid, path: "link.right.name", at: at{4, "erp"}, msg: "both sides are named",
		},
		{
			name: "listen on every interface without TLS",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: crm, driver: sqlite, dsn: ./b.db}
engine:
  listen: 0.0.0.0:7070
`,
			code: problem.ListenInsecure, path: "engine.listen", at: at{6, "0.0.0.0"}, msg: "TLS is not configured",
		},
		{
			name: "trusted origin with a path",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: crm, driver: sqlite, dsn: ./b.db}
engine:
  trusted_origins: [https://dw.example.com/ui]
`,
			code: problem.ConfigInvalid, path: "engine.trusted_origins[0]", at: at{6, "https"}, msg: "is not an origin",
		},
		{
			name: "tls cert without key",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: crm, driver: sqlite, dsn: ./b.db}
engine:
  listen: 127.0.0.1:7070
  tls_cert: cert.pem
`,
			code: problem.ConfigInvalid, path: "engine.tls_cert", at: at{7, "cert.pem"}, msg: "tls_cert and tls_key go together",
		},
		{
			name: "bad listen address",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: crm, driver: sqlite, dsn: ./b.db}
engine:
  listen: localhost
`,
			code: problem.ConfigInvalid, path: "engine.listen", at: at{6, "localhost"}, msg: "is not host:port",
		},
		{
			name: "warning after retention",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: crm, driver: sqlite, dsn: ./b.db}
engine:
  queue_retention: 1h
  queue_warn_at: 2h
`,
			code: problem.ConfigInvalid, path: "engine.queue_warn_at", at: at{7, "2h"}, msg: "must be shorter than queue_retention",
		},
		{
			name: "negative chunk size",
			src: `link:
  name: t
  left: {name: erp, driver: sqlite, dsn: ./a.db}
  right: {name: crm, driver: sqlite, dsn: ./b.db}
engine:
  chunk_size: -5
`,
			code: problem.ConfigInvalid, path: "engine.chunk_size", at: at{6, "-5"}, msg: "chunk_size is negative",
		},
		{
			name: "map name missing",
			src: `  - left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].name", at: at{6, "left: a"}, msg: "map name is missing",
		},
		{
			name: "map name with a dot",
			src: `  - {name: a.b, left: a, right: b, key: [{left: id, right: id}], columns: [{left: id, right: id}]}
`,
			code: problem.ConfigInvalid, path: "maps[0].name", at: at{6, "a.b"}, msg: "may use only letters",
		},
		{
			name: "map name repeated",
			src: `  - {name: m, left: a, right: b, key: [{left: id, right: id}], columns: [{left: id, right: id}]}
  - {name: m, left: c, right: d, key: [{left: id, right: id}], columns: [{left: id, right: id}]}
`,
			code: problem.ConfigInvalid, path: "maps[1].name", at: at{7, "m, left: c"}, msg: "already used by maps[0]",
		},
		{
			name: "left table missing",
			src: `  - name: m
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].left", at: at{6, "name"}, msg: "left table is missing; name the erp table",
		},
		{
			name: "right table empty",
			src: `  - name: m
    left: a
    right: ""
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].right", at: at{8, `""`}, msg: "right table is missing",
		},
		{
			name: "bad map direction",
			src: `  - name: m
    left: a
    right: b
    direction: sideways
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].direction", at: at{9, "sideways"}, msg: `direction "sideways" is not one of`,
		},
		{
			name: "master not a side",
			src: `  - name: m
    left: a
    right: b
    master: sap
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].master", at: at{9, "sap"}, msg: `master "sap" is not a side; use left, right, "erp" or "crm"`,
		},
		{
			name: "on_truncate not an action",
			src: `  - name: m
    left: a
    right: b
    on_truncate: ignore
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].on_truncate", at: at{9, "ignore"}, msg: `on_truncate "ignore" is not one of stop, resync, propagate`,
		},
		{
			name: "key missing",
			src: `  - name: m
    left: a
    right: b
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].key", at: at{6, "name"}, msg: "map has no key",
		},
		{
			name: "key column half",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.ConfigInvalid, path: "maps[0].key[0]", at: at{9, "{left: id}"}, msg: "key column needs both left and right",
		},
		{
			name: "two company columns",
			src: `  - name: m
    left: a
    right: b
    key:
      - {left: c1, right: c1, company: true}
      - {left: c2, right: c2, company: true}
    columns: [{left: c1, right: c1}, {left: c2, right: c2}]
`,
			code: problem.ConfigInvalid, path: "maps[0].key[1].company", at: at{11, "true"}, msg: "only one key column can be the company column",
		},
		{
			name: "key not mapped",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: code}]
    columns: [{left: name, right: name}]
`,
			code: problem.KeyNotBidirection, path: "maps[0].key[0]", at: at{9, "{left: id"}, msg: "key column id ↔ code is not mapped",
		},
		{
			name: "key one-way in bidirectional map",
			src: `  - name: m
    left: a
    right: b
    key: [{left: accountnum, right: accountnumber}]
    columns:
      - {left: accountnum, right: accountnumber, direction: right_to_left}
`,
			code: problem.KeyNotBidirection, path: "maps[0].key[0]", at: at{9, "{left"},
			msg: "key column accountnumber is right_to_left (columns[0]) in a bidirectional map; make it direction both",
		},
		{
			name: "key one-way lookup in bidirectional map",
			src: `  - name: c
    left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
  - name: m
    left: a
    right: b
    key: [{left: co, right: coid}]
    lookups: [{map: c, left: co, right: coid, direction: left_to_right}]
`,
			code: problem.KeyNotBidirection, path: "maps[1].key[0]", at: at{14, "{left"}, msg: "is left_to_right (lookups[0])",
		},
		{
			name: "column with no side",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {default: 1}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1]", at: at{12, "{default"}, msg: "names neither a left nor a right column",
		},
		{
			name: "one-sided column without value",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {right: source}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1]", at: at{12, "{right"}, msg: "column source has no left column to copy from; give it a default or a left_to_right expression",
		},
		{
			name: "one-sided column flowing the wrong way",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {right: source, direction: right_to_left, default: x}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].direction", at: at{12, "right_to_left"}, msg: "exists only on the right, so it can only be written there; set direction: left_to_right",
		},
		{
			name: "value map on one-sided column",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {left: origin, default: web, value_map: {a: b}}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].value_map", at: at{12, "{a: b}"}, msg: "has no source value to translate",
		},
		{
			name: "column direction outside map",
			src: `  - name: m
    left: a
    right: b
    direction: left_to_right
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {left: n, right: n, direction: both}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].direction", at: at{13, "both"}, msg: "column direction both is outside the map's direction left_to_right",
		},
		{
			name: "bad column direction",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {left: n, right: n, direction: up}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].direction", at: at{12, "up}"}, msg: `direction "up" is not one of`,
		},
		{
			name: "value map not invertible",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - left: t
        right: t
        value_map:
          Customer: "1"
          Client: "1"
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].value_map.Client", at: at{16, `"1"`}, msg: `sends both "Customer" and "Client" to "1"`,
		},
		{
			name: "both-ways column with one expression",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {left: n, right: n, left_to_right: 'upper(n)'}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].left_to_right", at: at{12, "'upper"}, msg: "an expression cannot be inverted; add a right_to_left expression",
		},
		{
			name: "expression outside column direction",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {left: n, right: n, direction: left_to_right, right_to_left: 'n'}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].right_to_left", at: at{12, "'n'"}, msg: "the right_to_left expression is never used",
		},
		{
			name: "empty expression",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {right: n, direction: left_to_right, left_to_right: "  "}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[1].left_to_right", at: at{12, `"  "`}, msg: "left_to_right expression is empty",
		},
		{
			name: "empty filter",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    filter: {right: ""}
`,
			code: problem.ConfigInvalid, path: "maps[0].filter.right", at: at{11, `""`}, msg: "filter.right is empty",
		},
		{
			name: "target column written twice",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns:
      - {left: id, right: id}
      - {left: name, right: title}
      - {left: label, right: title, direction: left_to_right}
`,
			code: problem.ConfigInvalid, path: "maps[0].columns[2]", at: at{13, "{left: label"}, msg: "right column title is already written by maps[0].columns[1]",
		},
		{
			name: "lookup without map",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    lookups: [{left: cur, right: curid}]
`,
			code: problem.LookupUncovered, path: "maps[0].lookups[0].map", at: at{11, "{left: cur"}, msg: "lookup on cur has no map",
		},
		{
			name: "lookup to unknown map",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    lookups: [{map: currencies, left: cur, right: curid}]
`,
			code: problem.LookupUncovered, path: "maps[0].lookups[0].map", at: at{11, "currencies"}, msg: "lookup to table currencies: no map covers it",
		},
		{
			name: "lookup missing a column",
			src: `  - name: m
    left: a
    right: b
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    lookups: [{map: m, left: parent}]
`,
			code: problem.ConfigInvalid, path: "maps[0].lookups[0]", at: at{11, "{map"}, msg: "lookup needs both a left and a right",
		},
		{
			name: "lookup direction outside map",
			src: `  - name: m
    left: a
    right: b
    direction: right_to_left
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    lookups: [{map: m, left: parent, right: parentid, direction: left_to_right}]
`,
			code: problem.ConfigInvalid, path: "maps[0].lookups[0].direction", at: at{12, "left_to_right}"}, msg: "lookup direction left_to_right is outside",
		},
		{
			name: "depends on unknown map",
			src: `  - name: m
    left: a
    right: b
    depends_on: [x, groups]
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
  - {name: x, left: x, right: x, key: [{left: id, right: id}], columns: [{left: id, right: id}]}
`,
			code: problem.UnknownMap, path: "maps[0].depends_on[1]", at: at{9, "groups"}, msg: `depends_on names map "groups", which does not exist`,
		},
		{
			name: "depends on itself",
			src: `  - name: m
    left: a
    right: b
    depends_on: [m]
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
`,
			code: problem.DependencyCycle, path: "maps[0].depends_on[0]", at: at{9, "m]"}, msg: "depends on itself",
		},
		{
			name: "dependency cycle through a lookup",
			src: `  - name: orders
    left: a
    right: b
    depends_on: [lines]
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
  - name: lines
    left: c
    right: d
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    lookups: [{map: orders, left: ord, right: ordid}]
`,
			code: problem.DependencyCycle, path: "maps[0].depends_on[0]", at: at{9, "lines"}, msg: "dependency cycle orders → lines → orders",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := tc.src
			if !strings.HasPrefix(src, "link:") {
				src = header + src
			}
			c := mustParse(t, src)
			issues := c.Validate()
			want := tc.at.pos(t, src)
			for _, is := range issues {
				if is.Code == tc.code && is.Path == tc.path {
					if is.Pos != want {
						t.Errorf("issue %s at %d:%d, want %d:%d", is, is.Pos.Line, is.Pos.Column, want.Line, want.Column)
					}
					if !strings.Contains(is.Message, tc.msg) {
						t.Errorf("message %q does not contain %q", is.Message, tc.msg)
					}
					if is.File != "test.yaml" {
						t.Errorf("File = %q, want test.yaml", is.File)
					}
					if len(issues) != 1 {
						t.Errorf("want exactly this issue, got %d:\n%s", len(issues), Issues(issues).Error())
					}
					return
				}
			}
			t.Fatalf("no %s issue at %s; got:\n%s", tc.code, tc.path, Issues(issues).Error())
		})
	}
}

func TestValidateSelfLookupAllowed(t *testing.T) {
	t.Parallel()
	c := mustParse(t, header+`  - name: customers
    left: custtable
    right: account
    key: [{left: accountnum, right: accountnumber}]
    columns: [{left: accountnum, right: accountnumber}]
    lookups: [{map: customers, left: invoiceaccount, right: invoiceid, right_ref: accountid}]
`)
	if issues := c.Validate(); len(issues) != 0 {
		t.Fatalf("a map looking itself up is allowed, got:\n%s", Issues(issues).Error())
	}
	if deps := c.Dependencies("customers"); len(deps) != 0 {
		t.Errorf("Dependencies = %v, want none (a self-reference is not a dependency)", deps)
	}
}

func TestValidateNullMeansUnset(t *testing.T) {
	t.Parallel()
	c := mustParse(t, header+`  - name: m
    left: a
    right: b
    direction:
    master: ~
    key: [{left: id, right: id}]
    columns:
      - left: id
        right: id
        left_to_right:
    filter:
      left:
`)
	if issues := c.Validate(); len(issues) != 0 {
		t.Fatalf("empty values are unset, got:\n%s", Issues(issues).Error())
	}
	if m := c.Maps[0]; m.Direction != Both || m.Master != "right" || m.Columns[0].HasDefault {
		t.Errorf("defaults not applied: %+v", m)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	src := `link:
  name: t
  left: {name: erp, driver: db2, dsn: x}
  right: {name: crm, driver: sqlite, dsn: ./crm.db}
maps:
  - name: a
    left: a
    right: a
    master: nobody
    key: [{left: id, right: id}]
    columns: [{left: id, right: id, direction: left_to_right}]
  - name: b
    left: b
    right: ""
    key: [{left: id, right: id}]
    columns: [{left: id, right: id}]
    lookups: [{map: zzz, left: x, right: y}]
`
	issues := mustParse(t, src).Validate()
	want := []string{
		"test.yaml:3:29: DW1002 link.left.driver",
		"test.yaml:9:13: DW1002 maps[0].master",
		"test.yaml:10:11: DW1004 maps[0].key[0]",
		"test.yaml:14:12: DW1002 maps[1].right",
		"test.yaml:17:21: DW1014 maps[1].lookups[0].map",
	}
	if len(issues) != len(want) {
		t.Fatalf("got %d issues, want %d:\n%s", len(issues), len(want), Issues(issues).Error())
	}
	for i, w := range want {
		if !strings.HasPrefix(issues[i].String(), w+": ") {
			t.Errorf("issue %d = %s\nwant prefix %s", i, issues[i], w)
		}
	}
	if issues[1].Map != "a" || issues[3].Map != "b" || issues[0].Map != "" {
		t.Errorf("Map fields = %q, %q, %q; want \"\", a, b", issues[0].Map, issues[1].Map, issues[3].Map)
	}
}

func TestValidateCycleOfThree(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(header)
	for _, m := range [][2]string{{"a", "b"}, {"b", "c"}, {"c", "a"}} {
		fmt.Fprintf(&b, "  - {name: %s, left: t, right: t, depends_on: [%s], key: [{left: id, right: id}], columns: [{left: id, right: id}]}\n", m[0], m[1])
	}
	issues := mustParse(t, b.String()).Validate()
	if len(issues) != 1 {
		t.Fatalf("want one cycle issue, got:\n%s", Issues(issues).Error())
	}
	if is := issues[0]; is.Code != problem.DependencyCycle || !strings.Contains(is.Message, "a → b → c → a") || is.Path != "maps[0].depends_on[0]" {
		t.Errorf("got %s", is)
	}
}

func TestIssueString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		is   Issue
		want string
	}{
		{
			Issue{Code: problem.KeyNotBidirection, File: "erp-crm.yaml", Path: "maps[2].key[0]", Pos: Pos{34, 9}, Message: "key column accountnumber is right_to_left in a bidirectional map; make it direction both"},
			"erp-crm.yaml:34:9: DW1004 maps[2].key[0]: key column accountnumber is right_to_left in a bidirectional map; make it direction both",
		},
		{Issue{Code: problem.ConfigInvalid, File: "x.yaml", Path: "link.name", Message: "m"}, "x.yaml: DW1002 link.name: m"},
		{Issue{Code: problem.ConfigInvalid, Path: "link.name", Message: "m"}, "DW1002 link.name: m"},
		{Issue{Code: problem.ConfigSyntax, File: "x.yaml", Pos: Pos{1, 1}, Message: "m"}, "x.yaml:1:1: DW1001: m"},
	}
	for _, tc := range tests {
		if got := tc.is.String(); got != tc.want {
			t.Errorf("String() = %q\nwant       %q", got, tc.want)
		}
	}
}

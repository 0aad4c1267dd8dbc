package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Load reads, decodes and completes the configuration file at path. It
// does not validate the maps: call Validate for that, so that one bad map
// does not stop the others.
//
// Errors carry a problem code (DW1001 for a file that cannot be read as a
// configuration, DW1002 for a bad value found while reading) and the
// issues, which IssuesOf returns.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigSyntax, err, "read configuration %s; check the path and its permissions", path)
	}
	return Parse(path, data)
}

// Parse decodes a configuration from data. name is the file's path: it
// names the file in messages, and relative paths in the file (data_dir,
// SQLite database files) are taken relative to its directory. Defaults are
// applied; see ApplyDefaults.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{file: name, positions: map[string]Pos{}}
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	c := &Config{File: name, positions: d.positions}
	d.decode("", root, reflect.ValueOf(c).Elem())
	expandDSN(d, "link.left.dsn", &c.Link.Left.DSN)
	expandDSN(d, "link.right.dsn", &c.Link.Right.DSN)
	expandDSN(d, "engine.queue_url", &c.Engine.QueueURL)
	for i := range c.Notify.Webhooks {
		expandDSN(d, fmt.Sprintf("notify.webhooks[%d].url", i), &c.Notify.Webhooks[i].URL)
	}
	for i := range c.Notify.Email {
		expandDSN(d, fmt.Sprintf("notify.email[%d].password", i), &c.Notify.Email[i].Password)
	}
	if len(d.issues) > 0 {
		sortIssues(d.issues)
		return nil, d.issues.Err()
	}
	c.ApplyDefaults()
	return c, nil
}

// parseYAML parses data into its single document's root node.
func parseYAML(name string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Issues{{Code: problem.ConfigSyntax, File: name, Pos: Pos{Line: 1, Column: 1},
				Message: "the file is empty; write a configuration with link, engine and maps (see docs/CONFIG.md)"}}.Err()
		}
		return nil, Issues{syntaxIssue(name, data, err)}.Err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Issues{{Code: problem.ConfigSyntax, File: name, Pos: nodePos(&extra),
			Message: "the file holds more than one YAML document; keep one configuration per file and remove the '---' separator"}}.Err()
	} else if !errors.Is(err, io.EOF) {
		return nil, Issues{syntaxIssue(name, data, err)}.Err()
	}
	if len(doc.Content) == 0 {
		return nil, Issues{{Code: problem.ConfigSyntax, File: name, Pos: Pos{Line: 1, Column: 1},
			Message: "the file is empty; write a configuration with link, engine and maps (see docs/CONFIG.md)"}}.Err()
	}
	return doc.Content[0], nil
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxIssue turns a YAML parser error into an issue with a line and a
// column. The parser reports only the line, so the column is that of the
// line's first character that is not a space.
func syntaxIssue(name string, data []byte, err error) Issue {
	is := Issue{Code: problem.ConfigSyntax, File: name, Pos: Pos{Line: 1, Column: 1}}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = m[2]
		is.Pos = Pos{Line: line, Column: 1}
		lines := strings.Split(string(data), "\n")
		if line >= 1 && line <= len(lines) {
			text := lines[line-1]
			is.Pos.Column = len(text) - len(strings.TrimLeft(text, " \t")) + 1
			if strings.ContainsRune(text[:is.Pos.Column-1], '\t') {
				msg += "; YAML indents with spaces, not tabs"
			}
		}
	}
	is.Message = fmt.Sprintf("invalid YAML: %s; fix the file's syntax (check indentation, colons and quotes)", msg)
	return is
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandDSN replaces ${VAR} in a connection string with the environment
// variable's value; "$$" stands for a literal "$". An unset variable is an
// issue: an empty password or host is never what was meant.
func expandDSN(d *decoder, path string, s *string) {
	if !strings.Contains(*s, "$") {
		return
	}
	*s = envRef.ReplaceAllStringFunc(*s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		name := ref[2 : len(ref)-1]
		v, ok := os.LookupEnv(name)
		if !ok {
			d.issues = append(d.issues, Issue{Code: problem.ConfigInvalid, File: d.file, Path: path, Pos: d.positions[path],
				Message: fmt.Sprintf("environment variable %s is not set; export it before starting dualwrite, or write the value in the file", name)})
		}
		return v
	})
}

// PosOf returns the position of the value at path, such as
// "maps[2].columns[1].left_to_right", or of its nearest enclosing value
// that has one. It is zero for a configuration not read from a file.
func (c *Config) PosOf(path string) Pos {
	for path != "" {
		if p, ok := c.positions[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Pos{}
}

// has reports whether path was written in the file.
func (c *Config) has(path string) bool {
	_, ok := c.positions[path]
	return ok
}

// resolveFile makes a relative file path relative to the configuration
// file's directory, and absolute, so the meaning does not depend on the
// directory dualwrite is started from.
func (c *Config) resolveFile(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if c.File != "" {
		p = filepath.Join(filepath.Dir(c.File), p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// resolveSQLiteDSN resolves the file of a SQLite DSN ("erp.db",
// "./erp.db", "file:erp.db?_pragma=...") like resolveFile; in-memory
// databases and absolute paths are left alone.
func (c *Config) resolveSQLiteDSN(dsn string) string {
	if dsn == "" || strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		return dsn
	}
	prefix, rest := "", dsn
	if strings.HasPrefix(dsn, "file:") {
		prefix, rest = "file:", dsn[len("file:"):]
		if strings.HasPrefix(rest, "//") {
			return dsn // a file URI with an authority is already absolute
		}
	}
	file, query, hasQuery := strings.Cut(rest, "?")
	if file == "" || filepath.IsAbs(file) {
		return dsn
	}
	out := prefix + c.resolveFile(file)
	if hasQuery {
		out += "?" + query
	}
	return out
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Finding is one validation problem, as `dualwrite validate` prints it.
type Finding struct {
	Code    string `json:"code"`
	Map     string `json:"map,omitempty"`
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

// Check runs every validation check on a configuration file: syntax,
// static checks, connections, server settings and privileges, and each
// map against the real tables. It lists every problem, not just the first.
func Check(ctx context.Context, path string, log *slog.Logger) ([]Finding, error) {
	cfg, err := config.Load(path)
	if err != nil {
		if issues := config.IssuesOf(err); len(issues) > 0 {
			var out []Finding
			for _, is := range issues {
				out = append(out, Finding{Code: string(is.Code), Map: is.Map, Path: is.Path, Line: is.Pos.Line, Column: is.Pos.Column, Message: is.Message, Text: is.String()})
			}
			return out, nil
		}
		return []Finding{{Code: string(codeOr(err, problem.ConfigSyntax)), Message: err.Error(), Text: err.Error()}}, nil
	}
	var out []Finding
	for _, is := range cfg.Validate() {
		out = append(out, Finding{Code: string(is.Code), Map: is.Map, Path: is.Path, Line: is.Pos.Line, Column: is.Pos.Column, Message: is.Message, Text: is.String()})
	}
	sides := map[mapping.Side]connector.Connector{}
	for i, s := range []config.Side{cfg.Link.Left, cfg.Link.Right} {
		c, err := openSideReadOnly(ctx, cfg, s, log)
		if err != nil {
			out = append(out, Finding{Code: string(codeOr(err, problem.ConnectionFailed)), Path: "link." + sideKey(cfg, s), Line: s.Pos.Line, Column: s.Pos.Column, Message: err.Error(), Text: err.Error()})
			continue
		}
		defer c.Close()
		sides[mapping.Side(i)] = c
		if ch, ok := c.(connector.Checker); ok {
			var tables []string
			for _, m := range cfg.Maps {
				if i == 0 {
					tables = append(tables, m.Left)
				} else {
					tables = append(tables, m.Right)
				}
			}
			for _, p := range ch.Check(ctx, tables) {
				text := fmt.Sprintf("%s side %s: %s", p.Code, s.Name, p.Message)
				out = append(out, Finding{Code: p.Code, Path: "link." + sideKey(cfg, s), Message: p.Message, Text: text})
			}
		}
	}
	if len(sides) == 2 {
		tables := func(s mapping.Side, table string) (connector.Table, bool) {
			t, err := sides[s].Describe(ctx, table)
			return t, err == nil
		}
		_, issues := mapping.CompileAll(cfg, tables)
		for _, is := range issues {
			out = append(out, Finding{Code: string(is.Code), Map: is.Map, Path: is.Path, Line: is.Pos.Line, Column: is.Pos.Column, Message: is.Message, Text: is.String()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out, nil
}

// Warnings lists what is allowed but risky in a configuration that loads:
// serving tokens in clear text to other machines (engine.insecure_listen).
func Warnings(path string) []string {
	cfg, err := config.Load(path)
	if err != nil {
		return nil
	}
	var out []string
	if e := cfg.Engine; e.InsecureListen && !e.LoopbackListen() && !e.TLS() {
		out = append(out, fmt.Sprintf("%s: warning: engine.listen %s is reachable from other machines without TLS (engine.insecure_listen: true): access tokens and session cookies cross the network in clear text", path, e.Listen))
	}
	return out
}

// Validate prints the findings of Check, then the warnings, and returns
// the number of findings (warnings do not count).
func Validate(ctx context.Context, path string, w io.Writer, asJSON bool, log *slog.Logger) (int, error) {
	fs, err := Check(ctx, path, log)
	if err != nil {
		return 0, err
	}
	warnings := Warnings(path)
	if asJSON {
		if fs == nil {
			fs = []Finding{}
		}
		if warnings == nil {
			warnings = []string{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return len(fs), enc.Encode(map[string]any{"file": path, "problems": fs, "warnings": warnings})
	}
	for _, f := range fs {
		fmt.Fprintln(w, f.Text)
	}
	for _, x := range warnings {
		fmt.Fprintln(w, x)
	}
	if len(fs) == 0 {
		fmt.Fprintf(w, "%s: no problems found\n", path)
	} else {
		fmt.Fprintf(w, "%s: %d problems\n", path, len(fs))
	}
	return len(fs), nil
}

func codeOr(err error, c problem.Code) problem.Code {
	if code := problem.CodeOf(err); code != "" {
		return code
	}
	return c
}

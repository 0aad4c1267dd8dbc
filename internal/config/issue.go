package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Issue is one problem found in a configuration file.
type Issue struct {
	Code problem.Code
	// File is the configuration file's name, for messages.
	File string
	// Path names the field, e.g. "maps[2].columns[1].right".
	Path string
	// Pos is where in the file; zero when the configuration was not read
	// from a file.
	Pos Pos
	// Map is the name of the map the issue belongs to, or "" for issues
	// of the link, the engine settings or the file as a whole. The engine
	// refuses to start a map with issues and runs the others.
	Map string
	// Message says what is wrong and what to do about it.
	Message string
}

// String renders the issue like a compiler message:
//
//	erp-crm.yaml:34:9: DW1004 maps[2].key[0]: key column accountnumber is ...
func (i Issue) String() string {
	var b strings.Builder
	if i.File != "" {
		b.WriteString(i.File)
		if i.Pos.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", i.Pos.Line, i.Pos.Column)
		}
		b.WriteString(": ")
	}
	b.WriteString(string(i.Code))
	if i.Path != "" {
		b.WriteString(" ")
		b.WriteString(i.Path)
	}
	b.WriteString(": ")
	b.WriteString(i.Message)
	return b.String()
}

// Issues is a list of issues. As an error it renders one issue per line,
// starting on a new line when there are several.
type Issues []Issue

func (is Issues) Error() string {
	lines := make([]string, len(is))
	for i, x := range is {
		lines[i] = x.String()
	}
	if len(lines) > 1 {
		return "\n" + strings.Join(lines, "\n")
	}
	return strings.Join(lines, "\n")
}

// Err returns nil when there are no issues, else a *problem.Error with the
// first issue's code that wraps the issues, so that problem.CodeOf and
// IssuesOf both work on it.
func (is Issues) Err() error {
	if len(is) == 0 {
		return nil
	}
	file := is[0].File
	if file == "" {
		file = "the configuration"
	}
	noun := "problem"
	if len(is) > 1 {
		noun = "problems"
	}
	return problem.Wrap(is[0].Code, is, "%s has %d %s; fix and try again", file, len(is), noun)
}

// IssuesOf returns the issues carried by an error from Load, Parse or
// Issues.Err, or nil.
func IssuesOf(err error) Issues {
	var is Issues
	if errors.As(err, &is) {
		return is
	}
	return nil
}

// sortIssues orders issues by place in the file, keeping the order of
// discovery for issues at the same place.
func sortIssues(is []Issue) {
	sort.SliceStable(is, func(a, b int) bool {
		pa, pb := is[a].Pos, is[b].Pos
		if pa.Line != pb.Line {
			return pa.Line < pb.Line
		}
		return pa.Column < pb.Column
	})
}

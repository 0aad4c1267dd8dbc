package mapping

import (
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Side is one of the two databases of a link.
type Side int

const (
	Left Side = iota
	Right
)

// Other returns the opposite side.
func (s Side) Other() Side {
	if s == Left {
		return Right
	}
	return Left
}

func (s Side) String() string {
	if s == Left {
		return "left"
	}
	return "right"
}

// Tables gives the described table of a side; ok is false when the table
// does not exist.
type Tables func(s Side, table string) (connector.Table, bool)

// Issue is one problem found while compiling a map against the tables.
type Issue struct {
	Code problem.Code
	// Map is the name of the map the issue belongs to.
	Map string
	// Path names the configuration field, e.g. "maps[2].columns[1].right".
	Path string
	// Pos is the field's place in the configuration file; zero when
	// unknown.
	Pos     config.Pos
	Message string
}

// String renders the issue as
//
//	maps[2].columns[1].right (line 34, col 9): DW1024 column crm.account.foo does not exist; ...
func (i Issue) String() string {
	var b strings.Builder
	if i.Path != "" {
		b.WriteString(i.Path)
		if i.Pos.Line > 0 {
			fmt.Fprintf(&b, " (line %d, col %d)", i.Pos.Line, i.Pos.Column)
		}
		b.WriteString(": ")
	} else if i.Pos.Line > 0 {
		fmt.Fprintf(&b, "line %d, col %d: ", i.Pos.Line, i.Pos.Column)
	}
	b.WriteString(string(i.Code))
	b.WriteString(" ")
	b.WriteString(i.Message)
	return b.String()
}

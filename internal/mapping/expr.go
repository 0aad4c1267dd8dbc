package mapping

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// program is a compiled expression (a transform or a filter) with the
// source columns it reads.
type program struct {
	text string
	prog *vm.Program
	vars []string
}

// envZero returns the zero value whose type a column of kind k has inside
// expressions. nil leaves the type open.
func envZero(k connector.Kind) any {
	switch k {
	case connector.KindInt:
		return int64(0)
	case connector.KindFloat, connector.KindDecimal:
		return float64(0)
	case connector.KindText, connector.KindUUID, connector.KindJSON, connector.KindOther:
		return ""
	case connector.KindBool:
		return false
	case connector.KindBytes:
		return []byte(nil)
	case connector.KindTime, connector.KindDate:
		return time.Time{}
	}
	return nil
}

// envValue converts a row value to its type inside expressions (see
// envZero). A value that does not convert is passed as it is, so the
// expression's own error names it.
func envValue(v any, k connector.Kind) any {
	v = normalize(v)
	if v == nil {
		return nil
	}
	switch k {
	case connector.KindFloat, connector.KindDecimal:
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		case change.Decimal:
			if f, err := strconv.ParseFloat(strings.TrimSpace(string(x)), 64); err == nil {
				return f
			}
		}
		return v
	case "":
		return v
	}
	if c, err := Coerce(v, k); err == nil {
		return c
	}
	return v
}

// errUnknownName is returned by compileExpr when the expression uses a
// name that is neither a column nor a built-in function.
type errUnknownName struct{ name string }

func (e *errUnknownName) Error() string { return "unknown name " + e.name }

// compileExpr compiles text against the columns of t. With asBool the
// expression must produce a bool.
func compileExpr(text string, t connector.Table, asBool bool) (*program, error) {
	env := make(map[string]any, len(t.Columns))
	for _, c := range t.Columns {
		env[c.Name] = envZero(c.Kind)
	}
	opts := []expr.Option{expr.Env(env)}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	p, err := expr.Compile(text, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			if name, ok := strings.CutPrefix(fe.Message, "unknown name "); ok {
				return nil, &errUnknownName{name: name}
			}
			return nil, fmt.Errorf("%s (at column %d)", fe.Message, fe.Column+1)
		}
		return nil, err
	}
	cols := &identifiers{env: env, seen: map[string]bool{}}
	node := p.Node()
	ast.Walk(&node, cols)
	return &program{text: text, prog: p, vars: cols.names}, nil
}

// identifiers collects the column names an expression reads, in order of
// appearance.
type identifiers struct {
	env   map[string]any
	seen  map[string]bool
	names []string
}

func (v *identifiers) Visit(n *ast.Node) {
	id, ok := (*n).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if _, col := v.env[id.Value]; col && !v.seen[id.Value] {
		v.seen[id.Value] = true
		v.names = append(v.names, id.Value)
	}
}

// exprEnv builds the expression variables of a source row.
func exprEnv(t connector.Table, row change.Row) map[string]any {
	env := make(map[string]any, len(t.Columns))
	for _, c := range t.Columns {
		env[c.Name] = envValue(row[c.Name], c.Kind)
	}
	return env
}

// run evaluates p on env; failures carry DW3003.
func (p *program) run(env map[string]any) (any, error) {
	out, err := expr.Run(p.prog, env)
	if err != nil {
		msg := err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			msg = fe.Message
		}
		return nil, problem.New(problem.TransformFailed, "expression %q failed: %s; fix the expression (use `column ?? fallback` for NULLs) or the row's data", p.text, msg)
	}
	return out, nil
}

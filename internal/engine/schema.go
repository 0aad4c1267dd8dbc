package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Schema changes (docs/adr/20261204-schema-changes.md). The engine
// re-describes the tables of every active map now and then, and at once
// when a row fails on a target: a map whose tables no longer fit it (a
// mapped column dropped or retyped, a table renamed or dropped) is
// stopped with DW2051, alone; its other maps on the side go on. A column
// added on either side is reported in the activity log and changes
// nothing.

// suspectEvery bounds how often a failed row makes the engine re-describe
// the map's tables.
const suspectEvery = time.Second

// alteredTables asks each side's capturer which watched tables changed
// definition in the log since the last call.
func (e *Engine) alteredTables() [2][]string {
	var out [2][]string
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		st := &e.watch.sides[s]
		st.mu.Lock()
		w := st.schema
		st.mu.Unlock()
		if w != nil {
			out[s] = w.SchemaChanges()
		}
	}
	return out
}

// touches reports whether one of the map's tables is among altered.
func touches(ms *mapState, altered [2][]string) bool {
	if ms.m == nil {
		return false
	}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		if slices.Contains(altered[s], ms.m.Table(s)) {
			return true
		}
	}
	return false
}

// schemaBroke is called before a failed row is parked. When the map's
// tables no longer fit it, the map is stopped and the row is not parked:
// the resync that follows the fix brings it over.
func (e *Engine) schemaBroke(ctx context.Context, ms *mapState, err error) bool {
	if ms.att.halted.Load() {
		return true
	}
	if code := problem.CodeOf(err); code != "" && code != problem.RowWriteFailed {
		return false
	}
	ms.att.mu.Lock()
	due := e.now().Sub(ms.att.lastSuspect) >= suspectEvery
	if due {
		ms.att.lastSuspect = e.now()
	}
	ms.att.mu.Unlock()
	if !due {
		return false
	}
	return e.checkSchema(ctx, ms)
}

// checkSchema re-describes the map's tables: it reports added columns and
// stops the map when its tables no longer fit it. It reports whether the
// map was stopped (or is being stopped).
func (e *Engine) checkSchema(ctx context.Context, ms *mapState) bool {
	if ms.m == nil {
		return false
	}
	issue, broken := e.schemaIssue(ctx, ms)
	if !broken {
		return ms.att.halted.Load()
	}
	e.requestHalt(ms, false, problem.SchemaChanged,
		"a table of the map changed: %s; fix the table (or the map and restart the engine), then run the map again (with initial sync)", issue)
	return true
}

// schemaIssue describes the map's tables again and compiles the map
// against them. It returns the first problem when the map no longer
// compiles. A side that cannot be reached is no schema change.
func (e *Engine) schemaIssue(ctx context.Context, ms *mapState) (string, bool) {
	fresh := map[[2]string]connector.Table{}
	unreachable := false
	tables := func(s mapping.Side, table string) (connector.Table, bool) {
		k := [2]string{s.String(), table}
		if t, ok := fresh[k]; ok {
			return t, true
		}
		t, err := e.sides[s].conn.Describe(ctx, table)
		if err != nil {
			if !errors.Is(err, connector.ErrNoTable) {
				unreachable = true
			}
			return connector.Table{}, false
		}
		fresh[k] = t
		return t, true
	}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		if t, ok := tables(s, ms.m.Table(s)); ok {
			e.reportAdded(ctx, ms, s, t)
		}
	}
	_, issues := mapping.Compile(e.cfg, ms.cfg, tables)
	if unreachable || ctx.Err() != nil || len(issues) == 0 {
		return "", false
	}
	return issues[0].String(), true
}

// reportAdded compares a table's columns with the last description seen
// and writes the added ones to the activity log.
func (e *Engine) reportAdded(ctx context.Context, ms *mapState, s mapping.Side, t connector.Table) {
	ms.att.mu.Lock()
	prev := ms.att.tables[s]
	ms.att.tables[s] = &t
	ms.att.mu.Unlock()
	if prev == nil {
		return
	}
	for _, c := range t.Columns {
		if _, ok := prev.Column(c.Name); ok {
			continue
		}
		e.log.Info("column added", "map", ms.name, "side", e.sideName(s), "table", t.Name, "column", c.Name)
		e.activity(ctx, ms.name, "engine", "schema", fmt.Sprintf("%s column %s (%s) added to %s on %s; nothing changes until the map uses it",
			problem.ColumnAdded, c.Name, c.Type, ms.m.Table(s), e.sideName(s)))
	}
}

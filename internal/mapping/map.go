package mapping

import (
	"fmt"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Map is a compiled table map. It is immutable and safe for concurrent
// use.
type Map struct {
	Name string
	Cfg  config.Map
	// Master is the side whose values win initial sync conflicts and break
	// live ties.
	Master Side

	dir       config.Direction
	sideNames [2]string
	tables    [2]connector.Table
	keys      [2][]string
	company   [2]string
	// pairs in Index order: column mappings, lookups, implicit key pairs.
	pairs   []*pair
	lookups []config.Lookup // refs and directions resolved
	specs   [2][]LookupSpec // by from side, by lookup index
	filters [2]*program
	sources [2][]string
}

// pair is one column mapping, lookup or implicit key copy.
type pair struct {
	index  int
	lookup int // index in lookups, or -1
	cols   [2]string
	kinds  [2]connector.Kind
	// flows[s] is true when the pair writes s.Other() from s.
	flows [2]bool
	// progs[s] computes the target value when flowing from s.
	progs [2]*program
	// vmap[s] maps source text on side s to the coerced target value.
	vmap    [2]map[string]any
	hasVMap bool
	// def[s] is the default coerced to the kind of side s.
	def    [2]any
	hasDef bool
	what   string // for messages: "column custtype → customertypecode"
}

// Translated is a source row mapped to the other side.
type Translated struct {
	// Values holds target column → value for every plain column pair
	// flowing this way (key columns included, lookup columns excluded),
	// transforms applied, coerced to the target column's kind. A pair
	// whose source column (or expression variable) is absent from the
	// source row is left out of Values and Lookups.
	Values change.Row
	// Lookups are the lookup columns still to resolve, in lookup order.
	Lookups []PendingLookup
}

// PendingLookup is a lookup the caller resolves through the related
// map's record pairing.
type PendingLookup struct {
	// Lookup is the index in Lookups().
	Lookup int
	// Values are the source row's values of the spec's SourceColumns, in
	// order: they identify the referenced record on the source side.
	Values []any
}

// Null reports whether the reference is empty: every value of the
// lookup's own columns is NULL (a scope column alone does not count), so
// the target columns get NULL.
func (pl PendingLookup) Null(spec LookupSpec) bool {
	for _, v := range pl.Values[spec.Scope:] {
		if v != nil {
			return false
		}
	}
	return true
}

// LookupSpec describes one lookup for one direction: the referencing row's
// SourceColumns hold the values of the related map's SourceRefs on the
// source side; the record they identify is paired (through the related
// map's record identity) with a target-side record, whose TargetRefs
// values are written into TargetColumns.
type LookupSpec struct {
	// Map is the related map.
	Map string
	// SourceColumns are the referencing columns on the source side, the
	// row's company column first when the lookup resolves within the
	// row's company there.
	SourceColumns []string
	// SourceRefs are the related map's source-side columns they match,
	// one for each.
	SourceRefs []string
	// TargetColumns are the columns written on the target side, and
	// TargetRefs the related map's target-side columns whose values they
	// get, one for each.
	TargetColumns, TargetRefs []string
	// SourceTable and TargetTable are the related map's tables on the
	// source side and the other side.
	SourceTable, TargetTable string
	// SelfReference is true when the lookup's map is this map.
	SelfReference bool
	// Scoped is true when the lookup resolves within the row's company.
	Scoped bool
	// Scope is 1 when SourceColumns starts with the row's company column
	// (added to resolve within the company), else 0.
	Scope int
}

// Pair is a column mapping or lookup flowing one way.
type Pair struct {
	// Index is stable across both directions: column mappings first in
	// file order, then lookups, then the key columns no mapping writes.
	Index          int
	Source, Target string
	Lookup         bool
	// Targets are every column the pair writes: Target alone, or a
	// lookup's target columns.
	Targets []string
}

// allows reports whether direction d lets data flow from side s.
func allows(d config.Direction, s Side) bool {
	switch d {
	case "", config.Both:
		return true
	case config.LeftToRight:
		return s == Left
	case config.RightToLeft:
		return s == Right
	}
	return false
}

// Table returns the map's table on side s.
func (m *Map) Table(s Side) string {
	if s == Left {
		return m.Cfg.Left
	}
	return m.Cfg.Right
}

// Flows reports whether data flows from side `from` to the other side.
func (m *Map) Flows(from Side) bool { return allows(m.dir, from) }

// Match applies the from-side filter to a source row; without a filter
// every row matches. A filter that yields NULL does not match.
func (m *Map) Match(from Side, row change.Row) (bool, error) {
	f := m.filters[from]
	if f == nil {
		return true, nil
	}
	out, err := f.run(exprEnv(m.tables[from], row))
	if err != nil {
		return false, fmt.Errorf("map %s: %s filter: %w", m.Name, from, err)
	}
	switch x := out.(type) {
	case bool:
		return x, nil
	case nil:
		return false, nil
	}
	return false, problem.New(problem.TransformFailed, "map %s: %s filter %q produced %v, not true or false; make it a condition", m.Name, from, f.text, out)
}

// Translate maps a row of side `from` to the other side.
func (m *Map) Translate(from Side, row change.Row) (Translated, error) {
	to := from.Other()
	out := Translated{Values: change.Row{}}
	var env map[string]any
	for _, p := range m.pairs {
		if !p.flows[from] {
			continue
		}
		if !m.readable(p, from, row) {
			continue
		}
		if p.lookup >= 0 {
			spec := m.specs[from][p.lookup]
			vals := make([]any, len(spec.SourceColumns))
			for i, col := range spec.SourceColumns {
				vals[i] = row[col]
			}
			out.Lookups = append(out.Lookups, PendingLookup{Lookup: p.lookup, Values: vals})
			continue
		}
		var v any
		switch {
		case p.progs[from] != nil:
			if env == nil {
				env = exprEnv(m.tables[from], row)
			}
			r, err := p.progs[from].run(env)
			if err != nil {
				return Translated{}, fmt.Errorf("map %s: %s: %w", m.Name, p.what, err)
			}
			v = r
		case p.cols[from] != "":
			v = row[p.cols[from]]
			if v != nil && p.hasVMap {
				mapped, ok := lookupValueMap(p.vmap[from], v)
				switch {
				case ok:
					v = mapped
				case p.hasDef:
					v = nil
				default:
					return Translated{}, problem.New(problem.TransformFailed, "map %s: %s: the %s value %q has no entry in value_map; add it to value_map or give the column a default",
						m.Name, p.what, from, textOf(v))
				}
			}
		}
		if v == nil && p.hasDef {
			out.Values[p.cols[to]] = p.def[to]
			continue
		}
		c, err := Coerce(v, p.kinds[to])
		if err != nil {
			return Translated{}, fmt.Errorf("map %s: %s: %w", m.Name, p.what, err)
		}
		out.Values[p.cols[to]] = c
	}
	return out, nil
}

// readable reports whether row holds what pair p reads when flowing from
// side `from`. A column absent from the row (a partial row, or a value the
// change log did not carry) is unknown, not NULL: the pair is left out
// rather than writing a wrong value.
func (m *Map) readable(p *pair, from Side, row change.Row) bool {
	if p.lookup >= 0 {
		for _, col := range m.specs[from][p.lookup].SourceColumns {
			if _, ok := row[col]; !ok {
				return false
			}
		}
		return true
	}
	if prog := p.progs[from]; prog != nil {
		for _, v := range prog.vars {
			if _, ok := row[v]; !ok {
				return false
			}
		}
		return true
	}
	if c := p.cols[from]; c != "" {
		_, ok := row[c]
		return ok
	}
	return true
}

// lookupValueMap finds the entry of a source value: by its text, then for
// numbers by numeric value (Decimal "1.0000" finds "1").
func lookupValueMap(vm map[string]any, v any) (any, bool) {
	if out, ok := vm[textOf(v)]; ok {
		return out, true
	}
	v = normalize(v)
	if !isNumber(v) {
		return nil, false
	}
	for k, out := range vm {
		if r, ok := parseDecimal(k); ok {
			if rv, ok := ratOf(v); ok && r.Cmp(rv) == 0 {
				return out, true
			}
		}
	}
	return nil, false
}

// KeyColumns returns the integration key columns of side s in key order.
func (m *Map) KeyColumns(s Side) []string { return append([]string(nil), m.keys[s]...) }

// CompanyColumn returns the key column of side s marked company, or "".
func (m *Map) CompanyColumn(s Side) string { return m.company[s] }

// KeyOf returns the integration key values of a side-s row, in key order.
// A NULL or missing key value is an error with code DW3004.
func (m *Map) KeyOf(s Side, row change.Row) ([]any, error) {
	out := make([]any, len(m.keys[s]))
	for i, c := range m.keys[s] {
		v, ok := row[c]
		if !ok || v == nil {
			return nil, problem.New(problem.KeyMissing, "integration key column %s.%s.%s is empty; give every key column a value on the row", m.sideNames[s], m.Table(s), c)
		}
		out[i] = v
	}
	return out, nil
}

// Lookups returns the map's lookups with their refs and directions
// resolved.
func (m *Map) Lookups() []config.Lookup { return append([]config.Lookup(nil), m.lookups...) }

// Lookup describes lookup i for rows flowing from side `from`.
func (m *Map) Lookup(from Side, i int) LookupSpec { return m.specs[from][i] }

// Pairs returns every column mapping and lookup flowing from side `from`,
// in Index order.
func (m *Map) Pairs(from Side) []Pair {
	to := from.Other()
	var out []Pair
	for _, p := range m.pairs {
		if p.flows[from] {
			pr := Pair{Index: p.index, Source: p.cols[from], Target: p.cols[to], Lookup: p.lookup >= 0, Targets: []string{p.cols[to]}}
			if p.lookup >= 0 {
				pr.Targets = m.specs[from][p.lookup].TargetColumns
			}
			out = append(out, pr)
		}
	}
	return out
}

// SourceColumns returns every column of side `from` the map reads when
// rows flow from it: key columns, mapped and lookup source columns, and
// the variables of the filter and expressions.
func (m *Map) SourceColumns(from Side) []string { return append([]string(nil), m.sources[from]...) }

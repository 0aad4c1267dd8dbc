package mapping

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// CompileAll compiles every map of cfg. A map with problems is absent from
// the result; its issues are in the returned list.
func CompileAll(cfg *config.Config, tables Tables) (map[string]*Map, []Issue) {
	out := map[string]*Map{}
	var issues []Issue
	for i, m := range cfg.Maps {
		if _, dup := out[m.Name]; dup {
			continue // config reports duplicate names
		}
		cm, is := compile(cfg, i, m, tables)
		issues = append(issues, is...)
		if cm != nil {
			out[m.Name] = cm
		}
	}
	return out, issues
}

// Compile checks one map against the described tables and compiles it. It
// returns every problem found, and a nil *Map when there is any.
func Compile(cfg *config.Config, m config.Map, tables Tables) (*Map, []Issue) {
	idx := -1
	for i := range cfg.Maps {
		if cfg.Maps[i].Name == m.Name {
			idx = i
			break
		}
	}
	return compile(cfg, idx, m, tables)
}

// compiler holds the state of one Compile.
type compiler struct {
	cfg    *config.Config
	m      config.Map
	path   string // "maps[2]"
	tables Tables
	out    *Map
	issues []Issue
	// known[s] is false when the map's table on side s does not exist.
	known [2]bool
}

func compile(cfg *config.Config, idx int, m config.Map, tables Tables) (*Map, []Issue) {
	c := &compiler{cfg: cfg, m: m, tables: tables, path: fmt.Sprintf("maps[%d]", idx)}
	if idx < 0 {
		c.path = fmt.Sprintf("maps[%s]", m.Name)
	}
	dir := m.Direction
	if dir == "" {
		dir = config.Both
	}
	c.out = &Map{Name: m.Name, Cfg: m, Master: masterOf(cfg, m), dir: dir}
	c.out.sideNames = [2]string{sideLabel(cfg.Link.Left.Name, Left), sideLabel(cfg.Link.Right.Name, Right)}

	c.describe()
	c.columns()
	c.lookups()
	c.key()
	c.implicitKeys()
	c.filters()
	c.mandatory()
	c.sourceColumns()
	if len(c.issues) > 0 {
		return nil, c.issues
	}
	return c.out, nil
}

func masterOf(cfg *config.Config, m config.Map) Side {
	switch m.Master {
	case "left":
		return Left
	case "right", "":
		return Right
	}
	if m.Master == cfg.Link.Left.Name {
		return Left
	}
	return Right
}

func sideLabel(name string, s Side) string {
	if name == "" {
		return s.String()
	}
	return name
}

func (c *compiler) add(code problem.Code, path string, pos config.Pos, format string, args ...any) {
	if pos == (config.Pos{}) {
		pos = c.m.Pos
	}
	c.issues = append(c.issues, Issue{Code: code, Map: c.m.Name, Path: path, Pos: pos, Message: fmt.Sprintf(format, args...)})
}

// qualified names a table or column for messages: "crm.account.name".
func (c *compiler) qualified(s Side, table string, col ...string) string {
	return strings.Join(append([]string{c.out.sideNames[s], table}, col...), ".")
}

func (c *compiler) describe() {
	for _, s := range []Side{Left, Right} {
		name := c.out.Table(s)
		if name == "" {
			continue // config reports a missing table name
		}
		t, ok := c.tables(s, name)
		if !ok {
			c.add(problem.UnknownTable, c.path+"."+s.String(), c.m.Pos, "table %s does not exist on the %s side; create it or fix the table name",
				c.qualified(s, name), c.out.sideNames[s])
			continue
		}
		c.known[s] = true
		c.out.tables[s] = t
	}
}

// column checks that col exists in the map's table on side s and returns
// its kind.
func (c *compiler) column(s Side, col, path string, pos config.Pos) (connector.Kind, bool) {
	if col == "" || !c.known[s] {
		return "", false
	}
	t := c.out.tables[s]
	cd, ok := t.Column(col)
	if !ok {
		c.add(problem.UnknownColumn, path, pos, "column %s does not exist; %s", c.qualified(s, t.Name, col), suggestColumn(t, col))
		return "", false
	}
	return cd.Kind, true
}

// suggestColumn says what to do about a missing column of t.
func suggestColumn(t connector.Table, col string) string {
	for _, cd := range t.Columns {
		if strings.EqualFold(cd.Name, col) {
			return fmt.Sprintf("did you mean %s? Names are case-sensitive", cd.Name)
		}
	}
	names := make([]string, 0, len(t.Columns))
	for _, cd := range t.Columns {
		names = append(names, cd.Name)
	}
	if len(names) > 12 {
		names = append(names[:12], "...")
	}
	return fmt.Sprintf("fix the name or add the column (the table has %s)", strings.Join(names, ", "))
}

func columnDirection(col config.ColumnMap, mapDir config.Direction) config.Direction {
	if col.Direction != "" {
		return col.Direction
	}
	if mapDir == config.Both {
		switch {
		case col.Left == "" && col.Right != "":
			return config.LeftToRight
		case col.Right == "" && col.Left != "":
			return config.RightToLeft
		}
	}
	return mapDir
}

func (c *compiler) columns() {
	for j, col := range c.m.Columns {
		cp := fmt.Sprintf("%s.columns[%d]", c.path, j)
		p := &pair{index: j, lookup: -1, cols: [2]string{col.Left, col.Right}, hasDef: col.HasDefault}
		p.what = describePair(col.Left, col.Right)
		d := columnDirection(col, c.out.dir)
		exprs := [2]string{col.LeftToRight, col.RightToLeft}
		for _, s := range []Side{Left, Right} {
			p.flows[s] = allows(d, s) && allows(c.out.dir, s) && p.cols[s.Other()] != "" &&
				(p.cols[s] != "" || exprs[s] != "" || col.HasDefault)
		}
		var okKind [2]bool
		p.kinds[Left], okKind[Left] = c.column(Left, col.Left, cp+".left", col.Pos)
		p.kinds[Right], okKind[Right] = c.column(Right, col.Right, cp+".right", col.Pos)

		for _, s := range []Side{Left, Right} {
			if !p.flows[s] || exprs[s] == "" || !c.known[s] {
				continue
			}
			ep := cp + "." + flowName(s)
			prog, err := compileExpr(exprs[s], c.out.tables[s], false)
			if err != nil {
				c.exprIssue(s, ep, col.Pos, exprs[s], err)
				continue
			}
			p.progs[s] = prog
		}

		if len(col.ValueMap) > 0 || len(col.ValueMapPairs) > 0 {
			p.hasVMap = true
			entries := valueMapEntries(col)
			for _, s := range []Side{Left, Right} {
				p.vmap[s] = map[string]any{}
			}
			bad := false
			for _, e := range entries {
				for _, s := range []Side{Left, Right} {
					src, dst := e[s], e[s.Other()]
					if _, dup := p.vmap[s][src]; dup {
						continue // first entry in file order wins
					}
					v, err := Coerce(dst, p.kinds[s.Other()])
					if err != nil {
						if p.flows[s] && okKind[s.Other()] && !bad {
							c.add(problem.TypeMismatch, cp+".value_map", col.Pos, "value_map value %q cannot be written to %s column %s; use a value of the column's type",
								dst, p.kinds[s.Other()], c.qualified(s.Other(), c.out.tables[s.Other()].Name, p.cols[s.Other()]))
							bad = true
						}
						continue
					}
					p.vmap[s][src] = v
				}
			}
		}

		if col.HasDefault {
			reported := false
			for _, s := range []Side{Left, Right} {
				to := s.Other()
				if !p.flows[s] {
					continue
				}
				v, err := Coerce(col.Default, p.kinds[to])
				if err != nil {
					if okKind[to] && !reported {
						reported = true
						c.add(problem.TypeMismatch, cp+".default", col.Pos, "default %q cannot be written to %s column %s; use a value of the column's type",
							textOf(col.Default), p.kinds[to], c.qualified(to, c.out.tables[to].Name, p.cols[to]))
					}
					continue
				}
				p.def[to] = v
			}
		}

		if okKind[Left] && okKind[Right] && !compatible(p.kinds[Left], p.kinds[Right]) && !p.hasVMap {
			for _, s := range []Side{Left, Right} {
				if p.flows[s] && exprs[s] == "" {
					c.kindIssue(cp, col.Pos, Left, col.Left, Right, col.Right, p.kinds)
					break
				}
			}
		}
		c.out.pairs = append(c.out.pairs, p)
	}
}

func describePair(left, right string) string { return "column " + pairNames(left, right) }

func pairNames(left, right string) string {
	switch {
	case left == "":
		return right
	case right == "":
		return left
	}
	return left + " ↔ " + right
}

func flowName(s Side) string {
	if s == Left {
		return "left_to_right"
	}
	return "right_to_left"
}

// valueMapEntries returns the value map as [left, right] text pairs in
// file order (sorted by left value when only the map is known).
func valueMapEntries(col config.ColumnMap) [][2]string {
	if len(col.ValueMapPairs) > 0 {
		return col.ValueMapPairs
	}
	keys := make([]string, 0, len(col.ValueMap))
	for k := range col.ValueMap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, col.ValueMap[k]}
	}
	return out
}

func (c *compiler) kindIssue(path string, pos config.Pos, a Side, ac string, b Side, bc string, kinds [2]connector.Kind) {
	c.add(problem.TypeMismatch, path, pos, "columns %s (%s) and %s (%s) cannot carry each other's values; add a value_map or an expression, or map columns of compatible types",
		c.qualified(a, c.out.tables[a].Name, ac), c.typeOf(c.out.tables[a], ac, kinds[a]),
		c.qualified(b, c.out.tables[b].Name, bc), c.typeOf(c.out.tables[b], bc, kinds[b]))
}

func (c *compiler) typeOf(t connector.Table, col string, k connector.Kind) string {
	if cd, ok := t.Column(col); ok && cd.Type != "" && !strings.EqualFold(cd.Type, string(k)) {
		return fmt.Sprintf("%s, %s", cd.Type, k)
	}
	return string(k)
}

func (c *compiler) exprIssue(s Side, path string, pos config.Pos, text string, err error) {
	var un *errUnknownName
	if errors.As(err, &un) {
		c.add(problem.UnknownColumn, path, pos, "expression %q uses %s, which is not a column of %s; use a column name, or quote text as \"...\"",
			text, un.name, c.qualified(s, c.out.tables[s].Name))
		return
	}
	c.add(problem.ExprInvalid, path, pos, "expression %q does not compile: %v; fix the expression (see docs/CONFIG.md)", text, err)
}

func (c *compiler) lookups() {
	base := len(c.m.Columns)
	c.out.lookups = make([]config.Lookup, len(c.m.Lookups))
	for _, s := range []Side{Left, Right} {
		c.out.specs[s] = make([]LookupSpec, len(c.m.Lookups))
	}
	for j, l := range c.m.Lookups {
		lp := fmt.Sprintf("%s.lookups[%d]", c.path, j)
		d := l.Direction
		if d == "" {
			d = c.out.dir
		}
		l.Direction = d
		cols := [2][]string{l.Left, l.Right}
		p := &pair{index: base + j, lookup: j, cols: [2]string{first(l.Left), first(l.Right)}, what: "lookup " + pairNames(l.Left.String(), l.Right.String())}
		for _, s := range []Side{Left, Right} {
			p.flows[s] = allows(d, s) && allows(c.out.dir, s) && len(l.Left) > 0 && len(l.Right) > 0
		}
		var ok [2]bool
		for _, s := range []Side{Left, Right} {
			ok[s] = true
			for i, col := range cols[s] {
				k, found := c.column(s, col, lp+"."+s.String(), l.Pos)
				ok[s] = ok[s] && found
				if i == 0 {
					p.kinds[s] = k
				}
			}
		}

		var rel *config.Map
		for i := range c.cfg.Maps {
			if c.cfg.Maps[i].Name == l.Map {
				rel = &c.cfg.Maps[i]
				break
			}
		}
		if l.Map == c.m.Name {
			rel = &c.m
		}
		if rel == nil {
			c.add(problem.LookupUncovered, lp+".map", l.Pos, "lookup on %s names map %q, which does not exist, so nothing covers the referenced table; add that map or fix the name",
				pairNames(l.Left.String(), l.Right.String()), l.Map)
			c.out.lookups[j] = l
			c.out.pairs = append(c.out.pairs, p)
			continue
		}
		self := rel.Name == c.m.Name
		refs := [2]*config.Columns{&l.LeftRef, &l.RightRef}
		var relTables [2]connector.Table
		// scope[s] is this map's company column on side s when the lookup
		// resolves within the row's company there, else "".
		var scope [2]string
		for _, s := range []Side{Left, Right} {
			relName := rel.Left
			if s == Right {
				relName = rel.Right
			}
			refField := lp + "." + s.String() + "_ref"
			t, known := c.tables(s, relName)
			if !known {
				// A self-reference's table is the map's own, reported once
				// above.
				if relName != "" && !self {
					c.add(problem.UnknownTable, lp+".map", l.Pos, "lookup through map %s: table %s does not exist on the %s side; create it or fix map %s",
						rel.Name, c.qualified(s, relName), c.out.sideNames[s], rel.Name)
				}
				continue
			}
			relTables[s] = t
			own, relCompany := c.m.CompanyColumn(s.String()), rel.CompanyColumn(s.String())
			if own != "" && relCompany != "" && !slices.Contains(cols[s], own) {
				scope[s] = own
			}
			defaulted := len(*refs[s]) == 0
			if defaulted {
				ref, ok := defaultRefs(rel, s, t, len(cols[s]), scope[s] != "")
				if !ok {
					if self && len(rel.Key) == 0 {
						continue // the missing key is reported once
					}
					c.add(problem.ConfigInvalid, refField, l.Pos, "lookup through map %s: cannot tell which columns of %s the lookup references (the map's key and the table's primary key do not match its %d column(s)); set %s_ref",
						rel.Name, c.qualified(s, t.Name), len(cols[s]), s)
					continue
				}
				*refs[s] = ref
			}
			for i, ref := range *refs[s] {
				refCol, exists := t.Column(ref)
				if !exists {
					if self && defaulted {
						continue // a key column of this map, reported by key()
					}
					c.add(problem.UnknownColumn, refField, l.Pos, "lookup through map %s: column %s does not exist; %s",
						rel.Name, c.qualified(s, t.Name, ref), suggestColumn(t, ref))
					continue
				}
				if i >= len(cols[s]) {
					continue // count mismatch, reported by config validation
				}
				col := cols[s][i]
				cd, found := c.out.tables[s].Column(col)
				if ok[s] && found && !compatible(cd.Kind, refCol.Kind) {
					c.add(problem.TypeMismatch, lp+"."+s.String(), l.Pos, "lookup column %s (%s) cannot hold values of the referenced column %s (%s); reference a column of a compatible type with %s_ref",
						c.qualified(s, c.out.tables[s].Name, col), c.typeOf(c.out.tables[s], col, cd.Kind),
						c.qualified(s, t.Name, refCol.Name), c.typeOf(t, refCol.Name, refCol.Kind), s)
				}
			}
			c.ambiguous(lp, l, rel, s, t, scope[s], *refs[s])
		}
		c.out.lookups[j] = l
		var match [2][]string // the related map's columns matched on each side
		var from2 [2][]string // this map's columns whose values are matched
		for _, s := range []Side{Left, Right} {
			from2[s], match[s] = append([]string(nil), cols[s]...), append([]string(nil), (*refs[s])...)
			if scope[s] != "" {
				from2[s] = append([]string{scope[s]}, from2[s]...)
				match[s] = append([]string{rel.CompanyColumn(s.String())}, match[s]...)
			}
		}
		for _, from := range []Side{Left, Right} {
			to := from.Other()
			spec := LookupSpec{
				Map:           l.Map,
				SourceColumns: from2[from],
				SourceRefs:    match[from],
				SourceTable:   relTables[from].Name,
				TargetTable:   relTables[to].Name,
				SelfReference: self,
				Scoped:        scope[from] != "" || scope[to] != "",
			}
			if scope[from] != "" {
				spec.Scope = 1
			}
			// The target columns the lookup writes: a composite reference's
			// company column is written by the key's company mapping.
			company := c.m.CompanyColumn(to.String())
			for i, col := range cols[to] {
				if len(cols[to]) > 1 && col == company {
					continue
				}
				if i < len(*refs[to]) {
					spec.TargetColumns = append(spec.TargetColumns, col)
					spec.TargetRefs = append(spec.TargetRefs, (*refs[to])[i])
				}
			}
			c.out.specs[from][j] = spec
		}
		c.out.pairs = append(c.out.pairs, p)
	}
}

// ambiguous reports a lookup on side s into a company-keyed map that can
// match rows of several companies: it neither resolves within the row's
// company nor references columns unique across companies.
func (c *compiler) ambiguous(lp string, l config.Lookup, rel *config.Map, s Side, t connector.Table, scope string, refs []string) {
	relCompany := rel.CompanyColumn(s.String())
	if relCompany == "" || scope != "" || slices.Contains(refs, relCompany) || len(refs) == 0 || t.HasUnique(refs) {
		return
	}
	c.add(problem.LookupCrossCompany, lp, l.Pos, "lookup %s through map %s can match rows of several companies: %s is unique only within a company (%s), and map %s has no company key column on the %s side to resolve within; reference a column unique across companies with %s_ref, name the company column in the lookup (%s: [%s, %s]), or mark this map's company column in its key",
		pairNames(l.Left.String(), l.Right.String()), rel.Name, c.qualified(s, t.Name, strings.Join(refs, ", ")), relCompany, c.m.Name, c.out.sideNames[s], s, s, relCompany, strings.Join(refs, ", "))
}

func first(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	return cols[0]
}

// defaultRefs are the referenced columns when a lookup does not name them:
// the related map's key columns when they are as many as the lookup's
// (its company column left out when the lookup is company-scoped), else
// the table's primary key when it has as many columns.
func defaultRefs(rel *config.Map, s Side, t connector.Table, n int, scoped bool) ([]string, bool) {
	var key []string
	for _, k := range rel.Key {
		if scoped && k.Company {
			continue
		}
		key = append(key, keyColumns(k, s)...)
	}
	if len(key) == n && n > 0 {
		return key, true
	}
	if len(t.PrimaryKey) == n {
		return slices.Clone(t.PrimaryKey), true
	}
	var plain []string
	for _, k := range rel.Key {
		if !k.Company {
			plain = append(plain, keyColumns(k, s)...)
		}
	}
	if len(plain) == n && n > 0 {
		return plain, true
	}
	return nil, false
}

func keyColumns(k config.KeyColumn, s Side) []string {
	if s == Left {
		return k.Left
	}
	return k.Right
}

func (c *compiler) key() {
	kp := c.path + ".key"
	if len(c.m.Key) == 0 {
		c.add(problem.ConfigInvalid, kp, c.m.Pos, "map has no key; list the column pairs that identify a row on both sides, e.g. key: [{left: accountnum, right: accountnumber}]")
		return
	}
	complete := [2]bool{c.known[Left], c.known[Right]}
	for i, k := range c.m.Key {
		p := fmt.Sprintf("%s[%d]", kp, i)
		for _, s := range []Side{Left, Right} {
			cols := keyColumns(k, s)
			if len(cols) == 0 {
				complete[s] = false
			}
			for _, col := range cols {
				c.out.keys[s] = append(c.out.keys[s], col)
				if k.Company && c.out.company[s] == "" && len(cols) == 1 {
					c.out.company[s] = col
				}
				if col == "" {
					complete[s] = false
					continue
				}
				if _, ok := c.column(s, col, p+"."+s.String(), k.Pos); !ok {
					complete[s] = false
				}
			}
		}
	}
	for _, s := range []Side{Left, Right} {
		if !complete[s] {
			continue
		}
		t := c.out.tables[s]
		if !t.HasUnique(c.out.keys[s]) {
			cols := strings.Join(c.out.keys[s], ", ")
			c.add(problem.KeyNotUnique, kp, c.m.Key[0].Pos, "integration key missing: table %s has no unique index on (%s); add a unique index on (%s) or choose another key",
				c.qualified(s, t.Name), cols, cols)
		}
	}
}

// implicitKeys adds a copy pair for each key column that no column
// mapping or lookup writes, per direction.
func (c *compiler) implicitKeys() {
	written := [2]map[string]bool{{}, {}} // written[s]: columns written on side s
	for _, p := range c.out.pairs {
		for _, from := range []Side{Left, Right} {
			if p.flows[from] {
				written[from.Other()][p.cols[from.Other()]] = true
			}
		}
	}
	base := len(c.m.Columns) + len(c.m.Lookups)
	for i, k := range c.m.Key {
		if k.Left.One() == "" || k.Right.One() == "" {
			continue // a composite entry is written by its lookup
		}
		p := &pair{index: base + i, lookup: -1, cols: [2]string{k.Left[0], k.Right[0]}, what: "key " + describePair(k.Left[0], k.Right[0])}
		any := false
		for _, from := range []Side{Left, Right} {
			to := from.Other()
			p.flows[from] = c.out.Flows(from) && !written[to][p.cols[to]]
			any = any || p.flows[from]
		}
		if !any {
			continue
		}
		for _, s := range []Side{Left, Right} {
			if c.known[s] {
				if cd, ok := c.out.tables[s].Column(p.cols[s]); ok {
					p.kinds[s] = cd.Kind
				}
			}
		}
		if !compatible(p.kinds[Left], p.kinds[Right]) {
			c.kindIssue(fmt.Sprintf("%s.key[%d]", c.path, i), k.Pos, Left, k.Left[0], Right, k.Right[0], p.kinds)
		}
		c.out.pairs = append(c.out.pairs, p)
	}
}

func (c *compiler) filters() {
	texts := [2]string{c.m.Filter.Left, c.m.Filter.Right}
	for _, s := range []Side{Left, Right} {
		if strings.TrimSpace(texts[s]) == "" || !c.known[s] {
			continue
		}
		fp := c.path + ".filter." + s.String()
		prog, err := compileExpr(texts[s], c.out.tables[s], true)
		if err != nil {
			var un *errUnknownName
			if errors.As(err, &un) {
				c.exprIssue(s, fp, c.m.Filter.Pos, texts[s], err)
				continue
			}
			c.add(problem.ExprInvalid, fp, c.m.Filter.Pos, "filter %q is not a valid condition: %v; write a condition that is true or false, such as 'blocked != 1'", texts[s], err)
			continue
		}
		c.out.filters[s] = prog
	}
}

// mandatory reports NOT NULL columns without a database default that the
// map never writes on a side it inserts into.
func (c *compiler) mandatory() {
	for _, s := range []Side{Left, Right} {
		from := s.Other()
		if !c.out.Flows(from) || !c.known[s] {
			continue
		}
		written := map[string]bool{}
		for _, p := range c.out.pairs {
			if p.flows[from] {
				written[p.cols[s]] = true
				if p.lookup >= 0 {
					for _, t := range c.out.specs[from][p.lookup].TargetColumns {
						written[t] = true
					}
				}
			}
		}
		t := c.out.tables[s]
		for _, col := range t.Columns {
			if col.Nullable || col.HasDefault || written[col.Name] {
				continue
			}
			c.add(problem.MandatoryUnmapped, c.path+".columns", c.m.Pos, "column %s is NOT NULL without a default and the map does not write it, so inserting into %s would fail; map it, give it a default, or add a database default",
				c.qualified(s, t.Name, col.Name), c.qualified(s, t.Name))
		}
	}
}

func (c *compiler) sourceColumns() {
	for _, from := range []Side{Left, Right} {
		seen := map[string]bool{}
		var out []string
		add := func(cols ...string) {
			for _, col := range cols {
				if col != "" && !seen[col] {
					seen[col] = true
					out = append(out, col)
				}
			}
		}
		add(c.out.keys[from]...)
		for _, p := range c.out.pairs {
			if !p.flows[from] {
				continue
			}
			add(p.cols[from])
			if p.lookup >= 0 {
				add(c.out.specs[from][p.lookup].SourceColumns...)
			}
			if p.progs[from] != nil {
				add(p.progs[from].vars...)
			}
		}
		if f := c.out.filters[from]; f != nil {
			add(f.vars...)
		}
		c.out.sources[from] = out
	}
}

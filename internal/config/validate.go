package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Drivers are the supported database drivers.
var Drivers = []string{"sqlite", "postgres", "mysql"}

// mapNamePattern keeps map names usable in URLs, queue subjects and file
// names.
var mapNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validator collects issues.
type validator struct {
	c      *Config
	issues []Issue
}

func (v *validator) add(code problem.Code, mapName, path, format string, args ...any) {
	v.issues = append(v.issues, Issue{
		Code:    code,
		File:    v.c.File,
		Path:    path,
		Pos:     v.c.PosOf(path),
		Map:     mapName,
		Message: fmt.Sprintf(format, args...),
	})
}

// Validate checks the configuration without connecting to a database and
// returns every issue found, in file order. Checks that need the tables
// (columns exist, types fit, expressions compile, keys are unique) belong
// to the mapping and connector packages. Call it after ApplyDefaults
// (Load and Parse do).
func (c *Config) Validate() []Issue {
	v := &validator{c: c}
	v.link()
	v.engine()
	v.notify()
	names := map[string]int{}
	for i := range c.Maps {
		m := &c.Maps[i]
		p := fmt.Sprintf("maps[%d]", i)
		if m.Name != "" {
			if first, dup := names[m.Name]; dup {
				v.add(problem.ConfigInvalid, m.Name, p+".name", "map name %q is already used by maps[%d]; give each map its own name", m.Name, first)
			} else {
				names[m.Name] = i
			}
		}
		v.mapping(i, m, p)
		v.alerts(m, p)
	}
	v.issues = append(v.issues, c.cycleIssues()...)
	sortIssues(v.issues)
	return v.issues
}

func (v *validator) link() {
	l := &v.c.Link
	if strings.TrimSpace(l.Name) == "" {
		v.add(problem.ConfigInvalid, "", "link.name", "link name is missing; name the link, e.g. name: erp-crm")
	}
	for _, s := range []struct {
		side *Side
		path string
	}{{&l.Left, "link.left"}, {&l.Right, "link.right"}} {
		if strings.TrimSpace(s.side.Name) == "" {
			v.add(problem.ConfigInvalid, "", s.path+".name", "side name is missing; name the database, e.g. name: erp")
		}
		switch {
		case s.side.Driver == "":
			v.add(problem.ConfigInvalid, "", s.path+".driver", "driver is missing; use one of %s", strings.Join(Drivers, ", "))
		case !contains(Drivers, s.side.Driver):
			v.add(problem.ConfigInvalid, "", s.path+".driver", "driver %q is not supported; use one of %s", s.side.Driver, strings.Join(Drivers, ", "))
		}
		if strings.TrimSpace(s.side.DSN) == "" {
			v.add(problem.ConfigInvalid, "", s.path+".dsn", "dsn is missing; give the database's connection string (see docs/CONFIG.md for each driver)")
		}
	}
	if l.Left.Name != "" && l.Left.Name == l.Right.Name {
		v.add(problem.ConfigInvalid, "", "link.right.name", "both sides are named %q; give the two sides different names", l.Left.Name)
	}
	if l.Left.Name == "right" {
		v.add(problem.ConfigInvalid, "", "link.left.name", `the left side is named "right", which makes master: right ambiguous; choose another name`)
	}
	if l.Right.Name == "left" {
		v.add(problem.ConfigInvalid, "", "link.right.name", `the right side is named "left", which makes master: left ambiguous; choose another name`)
	}
}

func (v *validator) engine() {
	e := &v.c.Engine
	if host, port, err := net.SplitHostPort(e.Listen); err != nil {
		v.add(problem.ConfigInvalid, "", "engine.listen", "listen address %q is not host:port; write e.g. 127.0.0.1:7070", e.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(problem.ConfigInvalid, "", "engine.listen", "listen port %q in %q is not a port number; write e.g. %s:7070", port, e.Listen, host)
	}
	for i, o := range e.TrustedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			v.add(problem.ConfigInvalid, "", fmt.Sprintf("engine.trusted_origins[%d]", i), "trusted origin %q is not an origin; write scheme://host[:port], e.g. https://dualwrite.example.com", o)
		}
	}
	if (e.TLSCert == "") != (e.TLSKey == "") {
		v.add(problem.ConfigInvalid, "", "engine.tls_cert", "tls_cert and tls_key go together: give both PEM files to serve HTTPS, or neither")
	}
	if !e.LoopbackListen() && !e.TLS() && !e.InsecureListen {
		v.add(problem.ListenInsecure, "", "engine.listen",
			"listen address %q is reachable from other machines but TLS is not configured: tokens would cross the network in clear text; set engine.tls_cert and engine.tls_key, listen on 127.0.0.1, or set engine.insecure_listen: true if the network is trusted", e.Listen)
	}
	for _, d := range []struct {
		name string
		d    Duration
	}{{"queue_retention", e.QueueRetention}, {"queue_warn_at", e.QueueWarnAt}, {"poll_interval", e.PollInterval}} {
		if d.d < 0 {
			v.add(problem.ConfigInvalid, "", "engine."+d.name, "%s is negative (%s); give a positive duration or remove it for the default", d.name, d.d)
		}
	}
	if e.QueueWarnAt > 0 && e.QueueRetention > 0 && e.QueueWarnAt >= e.QueueRetention {
		v.add(problem.ConfigInvalid, "", "engine.queue_warn_at", "queue_warn_at (%s) must be shorter than queue_retention (%s), or the warning comes too late; lower it or remove it for 75%% of the retention",
			e.QueueWarnAt, e.QueueRetention)
	}
	if e.ChunkSize < 0 {
		v.add(problem.ConfigInvalid, "", "engine.chunk_size", "chunk_size is negative (%d); give a positive number of rows or remove it for %d", e.ChunkSize, DefaultChunkSize)
	}
	if e.GroupTransactions < 0 {
		v.add(problem.ConfigInvalid, "", "engine.group_transactions", "group_transactions is negative (%d); give 1 for one target transaction per source transaction, more to group under backlog, or remove it for %d", e.GroupTransactions, DefaultGroupTxs)
	}
	if e.RetainedLogWarn < 0 {
		v.add(problem.ConfigInvalid, "", "engine.retained_log_warn", "retained_log_warn is negative (%d); give a size in bytes or remove it for 1 GiB", e.RetainedLogWarn)
	}
}

// TLS reports whether the engine serves HTTPS.
func (e *Engine) TLS() bool { return e.TLSCert != "" && e.TLSKey != "" }

// LoopbackListen reports whether Listen accepts connections from this
// machine only: a loopback IP or "localhost". An empty host (":7070") or
// 0.0.0.0 listens on every interface.
func (e *Engine) LoopbackListen() bool {
	host, _, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return true // reported as malformed elsewhere
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validDirection(d Direction) bool { return d == Both || d == LeftToRight || d == RightToLeft }

// within reports whether direction inner fits in outer.
func within(inner, outer Direction) bool { return outer == Both || inner == outer }

func (v *validator) direction(mapName, path string, d Direction) bool {
	if !validDirection(d) {
		v.add(problem.ConfigInvalid, mapName, path, "direction %q is not one of both, left_to_right, right_to_left", d)
		return false
	}
	return true
}

func (v *validator) mapping(i int, m *Map, p string) {
	c := v.c
	switch {
	case strings.TrimSpace(m.Name) == "":
		v.add(problem.ConfigInvalid, "", p+".name", "map name is missing; name the map, e.g. name: customers")
	case !mapNamePattern.MatchString(m.Name):
		v.add(problem.ConfigInvalid, m.Name, p+".name", "map name %q may use only letters, digits, '-' and '_'; rename it", m.Name)
	}
	if strings.TrimSpace(m.Left) == "" {
		v.add(problem.ConfigInvalid, m.Name, p+".left", "left table is missing; name the %s table this map syncs", sideLabel(c, "left"))
	}
	if strings.TrimSpace(m.Right) == "" {
		v.add(problem.ConfigInvalid, m.Name, p+".right", "right table is missing; name the %s table this map syncs", sideLabel(c, "right"))
	}
	mapDirOK := v.direction(m.Name, p+".direction", m.Direction)
	switch m.Master {
	case "left", "right":
	default:
		if m.Master == "" || (m.Master != c.Link.Left.Name && m.Master != c.Link.Right.Name) {
			v.add(problem.ConfigInvalid, m.Name, p+".master", "master %q is not a side; use left, right, %q or %q", m.Master, c.Link.Left.Name, c.Link.Right.Name)
		}
	}

	switch m.OnTruncate {
	case "", TruncateStop, TruncateResync, TruncatePropagate:
	default:
		v.add(problem.ConfigInvalid, m.Name, p+".on_truncate", "on_truncate %q is not one of stop, resync, propagate", m.OnTruncate)
	}

	for j, d := range m.DependsOn {
		dp := fmt.Sprintf("%s.depends_on[%d]", p, j)
		switch {
		case d == m.Name:
			v.add(problem.DependencyCycle, m.Name, dp, "map %s depends on itself; remove it from depends_on", d)
		case c.MapByName(d) == nil:
			v.add(problem.UnknownMap, m.Name, dp, "depends_on names map %q, which does not exist; fix the name or remove it", d)
		}
	}

	// Which column and lookup write each target column, per direction.
	writers := map[string]string{}
	write := func(path string, d Direction, left, right Columns) {
		for _, t := range []struct {
			dir  Direction
			side string
			to   Columns
		}{{LeftToRight, "right", right}, {RightToLeft, "left", left}} {
			if !within(t.dir, d) {
				continue
			}
			for _, to := range t.to {
				if to == "" || (len(t.to) > 1 && to == m.CompanyColumn(t.side)) {
					// A composite reference matches on the company column
					// but does not write it: the key's company mapping does.
					continue
				}
				k := t.side + "\x00" + to
				if first, ok := writers[k]; ok {
					v.add(problem.ConfigInvalid, m.Name, path, "%s column %s is already written by %s; map each target column once", t.side, to, first)
					continue
				}
				writers[k] = path
			}
		}
	}

	for j := range m.Columns {
		cp := fmt.Sprintf("%s.columns[%d]", p, j)
		col := &m.Columns[j]
		if v.column(m, mapDirOK, col, cp) {
			write(cp, col.Direction, oneColumn(col.Left), oneColumn(col.Right))
		}
	}
	for j := range m.Lookups {
		lp := fmt.Sprintf("%s.lookups[%d]", p, j)
		l := &m.Lookups[j]
		if v.lookup(m, mapDirOK, l, lp) {
			write(lp, l.Direction, l.Left, l.Right)
		}
	}
	v.key(m, p)
	for _, side := range []string{"left", "right"} {
		fp := p + ".filter." + side
		text := m.Filter.Left
		if side == "right" {
			text = m.Filter.Right
		}
		if c.has(fp) && strings.TrimSpace(text) == "" {
			v.add(problem.ConfigInvalid, m.Name, fp, "filter.%s is empty; write a condition such as 'blocked != 1' or remove it to sync every row", side)
		}
	}
}

func sideLabel(c *Config, side string) string {
	name := c.Link.Left.Name
	if side == "right" {
		name = c.Link.Right.Name
	}
	if name == "" {
		return side
	}
	return name
}

// column checks one column mapping and reports whether its direction is
// usable for further checks.
func (v *validator) column(m *Map, mapDirOK bool, col *ColumnMap, cp string) bool {
	c := v.c
	for _, e := range []struct{ name, text string }{{"left_to_right", col.LeftToRight}, {"right_to_left", col.RightToLeft}} {
		if c.has(cp+"."+e.name) && strings.TrimSpace(e.text) == "" {
			v.add(problem.ConfigInvalid, m.Name, cp+"."+e.name, "%s expression is empty; write an expression or remove the field", e.name)
		}
	}
	if col.Left == "" && col.Right == "" {
		v.add(problem.ConfigInvalid, m.Name, cp, "column mapping names neither a left nor a right column; add left, right or both")
		return false
	}
	if !mapDirOK && col.Direction == m.Direction {
		return false // inherited from the map, whose direction is reported
	}
	if !v.direction(m.Name, cp+".direction", col.Direction) {
		return false
	}
	if mapDirOK && !within(col.Direction, m.Direction) {
		v.add(problem.ConfigInvalid, m.Name, cp+".direction", "column direction %s is outside the map's direction %s; make it %s or remove it", col.Direction, m.Direction, m.Direction)
		return false
	}
	hasExpr := map[Direction]bool{LeftToRight: col.LeftToRight != "", RightToLeft: col.RightToLeft != ""}
	for _, d := range []Direction{LeftToRight, RightToLeft} {
		if hasExpr[d] && !within(d, col.Direction) {
			v.add(problem.ConfigInvalid, m.Name, cp+"."+string(d), "the %s expression is never used: the column only flows %s; remove it or change the direction", d, col.Direction)
		}
	}
	name := col.Left + col.Right
	if col.Left == "" || col.Right == "" {
		present, toward := "right", LeftToRight
		if col.Right == "" {
			present, toward = "left", RightToLeft
		}
		if col.Direction != toward {
			v.add(problem.ConfigInvalid, m.Name, cp+".direction", "column %s exists only on the %s, so it can only be written there; set direction: %s", name, present, toward)
			return false
		}
		if !col.HasDefault && !hasExpr[toward] {
			v.add(problem.ConfigInvalid, m.Name, cp, "column %s has no %s column to copy from; give it a default or a %s expression", name, opposite(present), toward)
		}
		if len(col.ValueMap) > 0 {
			v.add(problem.ConfigInvalid, m.Name, cp+".value_map", "value_map on column %s has no source value to translate; remove it or map a %s column", name, opposite(present))
		}
		return true
	}
	if col.Direction == Both && hasExpr[LeftToRight] != hasExpr[RightToLeft] {
		given, missing := LeftToRight, RightToLeft
		if hasExpr[RightToLeft] {
			given, missing = RightToLeft, LeftToRight
		}
		v.add(problem.ConfigInvalid, m.Name, cp+"."+string(given), "column %s ↔ %s flows both ways but has only a %s expression, and an expression cannot be inverted; add a %s expression or set direction: %s", col.Left, col.Right, given, missing, given)
	}
	if col.Direction != LeftToRight {
		// Reading right to left uses the value map backwards.
		back := map[string]string{}
		for _, pair := range col.ValueMapPairs {
			if first, dup := back[pair[1]]; dup {
				v.add(problem.ConfigInvalid, m.Name, cp+".value_map."+pair[0], "value_map sends both %q and %q to %q, so %q cannot be mapped back; make the values distinct or set direction: left_to_right", first, pair[0], pair[1], pair[1])
				continue
			}
			back[pair[1]] = pair[0]
		}
	}
	return true
}

func opposite(side string) string {
	if side == "left" {
		return "right"
	}
	return "left"
}

// lookup checks one lookup and reports whether its direction is usable.
func (v *validator) lookup(m *Map, mapDirOK bool, l *Lookup, lp string) bool {
	c := v.c
	switch {
	case strings.TrimSpace(l.Map) == "":
		v.add(problem.LookupUncovered, m.Name, lp+".map", "lookup on %s has no map, so nothing covers the table it references; name the map of the referenced table, or remove the lookup", nonEmpty(l.Left.String(), l.Right.String()))
	case c.MapByName(l.Map) == nil:
		v.add(problem.LookupUncovered, m.Name, lp+".map", "lookup to table %s: no map covers it (there is no map named %q); add a map for it or remove the lookup", l.Map, l.Map)
	}
	ok := true
	if !named(l.Left) || !named(l.Right) {
		v.add(problem.ConfigInvalid, m.Name, lp, "lookup needs both a left and a right referencing column; add the missing one")
		ok = false
	}
	for _, r := range []struct {
		cols, refs Columns
		field      string
	}{{l.Left, l.LeftRef, "left_ref"}, {l.Right, l.RightRef, "right_ref"}} {
		if len(r.refs) > 0 && len(r.refs) != len(r.cols) {
			v.add(problem.ConfigInvalid, m.Name, lp+"."+r.field, "lookup has %d referencing columns %s but %d referenced columns %s; name one referenced column for each", len(r.cols), r.cols, len(r.refs), r.refs)
			ok = false
		}
	}
	if !mapDirOK && l.Direction == m.Direction {
		return false // inherited from the map, whose direction is reported
	}
	if !v.direction(m.Name, lp+".direction", l.Direction) {
		return false
	}
	if mapDirOK && !within(l.Direction, m.Direction) {
		v.add(problem.ConfigInvalid, m.Name, lp+".direction", "lookup direction %s is outside the map's direction %s; make it %s or remove it", l.Direction, m.Direction, m.Direction)
		return false
	}
	return ok
}

// key checks the integration key: present, complete, and mapped in a way
// that lets a row be found again on both sides.
func (v *validator) key(m *Map, p string) {
	if len(m.Key) == 0 {
		v.add(problem.ConfigInvalid, m.Name, p+".key", "map has no key; list the column pairs that identify a row on both sides, e.g. key: [{left: accountnum, right: accountnumber}]")
		return
	}
	companies := 0
	for j, k := range m.Key {
		kp := fmt.Sprintf("%s.key[%d]", p, j)
		if k.Company {
			companies++
			if companies == 2 {
				v.add(problem.ConfigInvalid, m.Name, kp+".company", "only one key column can be the company column; remove company: true from all but one")
			}
			if len(k.Left) > 1 || len(k.Right) > 1 {
				v.add(problem.ConfigInvalid, m.Name, kp+".company", "company: true marks one column on each side, but this key entry has several; mark a one-column entry")
			}
		}
		if !named(k.Left) || !named(k.Right) {
			v.add(problem.ConfigInvalid, m.Name, kp, "key column needs both left and right; add the missing one")
			continue
		}
		dir, where, found := Direction(""), "", false
		for ci, col := range m.Columns {
			if len(k.Left) == 1 && len(k.Right) == 1 && col.Left == k.Left[0] && col.Right == k.Right[0] {
				dir, where, found = col.Direction, fmt.Sprintf("columns[%d]", ci), true
				break
			}
		}
		if !found {
			for li, l := range m.Lookups {
				if l.Left.Equal(k.Left) && l.Right.Equal(k.Right) {
					dir, where, found = l.Direction, fmt.Sprintf("lookups[%d]", li), true
					break
				}
			}
		}
		switch {
		case !found && (len(k.Left) > 1 || len(k.Right) > 1):
			v.add(problem.KeyNotBidirection, m.Name, kp, "key entry %s ↔ %s has several columns, so a lookup must pair them; add {map: <the referenced map>, left: %s, right: %s} to lookups", k.Left, k.Right, k.Left, k.Right)
		case !found:
			v.add(problem.KeyNotBidirection, m.Name, kp, "key column %s ↔ %s is not mapped; add {left: %s, right: %s} to columns (or a lookup if it references another map)", k.Left, k.Right, k.Left, k.Right)
		case m.Bidirectional() && dir != Both:
			v.add(problem.KeyNotBidirection, m.Name, kp, "key column %s is %s (%s) in a bidirectional map; make it direction both", k.Right, dir, where)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// named reports whether cols names at least one column and none is empty.
func named(cols Columns) bool {
	if len(cols) == 0 {
		return false
	}
	for _, c := range cols {
		if strings.TrimSpace(c) == "" {
			return false
		}
	}
	return true
}

func oneColumn(c string) Columns {
	if c == "" {
		return nil
	}
	return Columns{c}
}

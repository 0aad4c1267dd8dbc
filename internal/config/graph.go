package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// MapByName returns the first map called name, or nil.
func (c *Config) MapByName(name string) *Map {
	for i := range c.Maps {
		if c.Maps[i].Name == name {
			return &c.Maps[i]
		}
	}
	return nil
}

// Dependencies returns the maps that map name directly depends on: its
// depends_on and the maps its lookups go through, without itself (a map
// that looks itself up, such as an invoice account on the customer table,
// is a self-reference, not a dependency), each once, in file order. Names
// of maps that do not exist are included; Validate reports them.
func (c *Config) Dependencies(name string) []string {
	m := c.MapByName(name)
	if m == nil {
		return nil
	}
	var out []string
	add := func(dep string) {
		if dep != "" && dep != name && !slices.Contains(out, dep) {
			out = append(out, dep)
		}
	}
	for _, d := range m.DependsOn {
		add(d)
	}
	for _, l := range m.Lookups {
		add(l.Map)
	}
	return out
}

// Bidirectional reports whether data flows both ways through the map.
func (m *Map) Bidirectional() bool {
	return m.Direction == Both || m.Direction == ""
}

// MasterSide returns "left" or "right": the side named by Master, which
// may be "left", "right" or a side's name. Unset or unknown means "right",
// the default; Validate reports unknown values.
func (m *Map) MasterSide(c *Config) string {
	switch m.Master {
	case "left":
		return "left"
	case "right", "":
		return "right"
	}
	if m.Master == c.Link.Left.Name {
		return "left"
	}
	return "right"
}

// edge is one dependency with the place in the file that declares it.
type edge struct {
	to   string
	path string
}

// dependencyEdges returns the declared dependencies of the map at index i
// (depends_on, then lookups) with their paths, without self-references.
func (c *Config) dependencyEdges(i int) []edge {
	m := &c.Maps[i]
	var out []edge
	for j, d := range m.DependsOn {
		if d != m.Name {
			out = append(out, edge{d, fmt.Sprintf("maps[%d].depends_on[%d]", i, j)})
		}
	}
	for j, l := range m.Lookups {
		if l.Map != "" && l.Map != m.Name {
			out = append(out, edge{l.Map, fmt.Sprintf("maps[%d].lookups[%d]", i, j)})
		}
	}
	return out
}

// cycleIssues reports each dependency cycle once, naming its path, at the
// dependency of its first map (in file order) that closes it.
func (c *Config) cycleIssues() []Issue {
	index := map[string]int{}
	for i, m := range c.Maps {
		if _, dup := index[m.Name]; !dup && m.Name != "" {
			index[m.Name] = i
		}
	}
	const (
		unvisited = iota
		onStack
		done
	)
	state := make([]int, len(c.Maps))
	var stack []int
	var stackEdges []edge
	var issues []Issue
	seen := map[string]bool{}
	var visit func(i int)
	visit = func(i int) {
		state[i] = onStack
		stack = append(stack, i)
		for _, e := range c.dependencyEdges(i) {
			j, ok := index[e.to]
			if !ok {
				continue // unknown map: reported as DW1041
			}
			stackEdges = append(stackEdges, e)
			switch state[j] {
			case unvisited:
				visit(j)
			case onStack:
				start := slices.Index(stack, j)
				issues = append(issues, c.cycleIssue(stack[start:], stackEdges[start:], seen)...)
			}
			stackEdges = stackEdges[:len(stackEdges)-1]
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range c.Maps {
		if state[i] == unvisited {
			visit(i)
		}
	}
	return issues
}

// cycleIssue builds the issue for the cycle through maps (indexes) linked
// by edges, where edges[k] goes from maps[k] to maps[k+1] (wrapping). A
// cycle found again from another starting map is reported once.
func (c *Config) cycleIssue(maps []int, edges []edge, seen map[string]bool) []Issue {
	// Rotate so the cycle starts at its first map in the file.
	first := 0
	for k := range maps {
		if maps[k] < maps[first] {
			first = k
		}
	}
	names := make([]string, 0, len(maps)+1)
	for k := range maps {
		names = append(names, c.Maps[maps[(first+k)%len(maps)]].Name)
	}
	names = append(names, names[0])
	key := strings.Join(names, " → ")
	if seen[key] {
		return nil
	}
	seen[key] = true
	closing := edges[first]
	m := c.Maps[maps[first]]
	via := "depends_on"
	if strings.Contains(closing.path, ".lookups[") {
		via = "lookup"
	}
	return []Issue{{
		Code:    problem.DependencyCycle,
		File:    c.File,
		Path:    closing.path,
		Pos:     c.PosOf(closing.path),
		Map:     m.Name,
		Message: fmt.Sprintf("dependency cycle %s (this %s is one link of it); maps in a cycle can never start in order, so remove a depends_on or a lookup that closes the cycle", key, via),
	}}
}

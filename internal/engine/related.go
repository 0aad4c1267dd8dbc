package engine

import (
	"cmp"
	"slices"
)

// dependencyOrder returns the maps in names, plus nothing else, in a
// topological order of deps (a map comes after the maps it depends on)
// that keeps the user's order (rank) wherever the dependencies allow:
// Kahn's algorithm, always taking the ready map with the lowest rank.
func dependencyOrder(names []string, deps func(string) []string, rank func(string) int) []string {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	indeg := map[string]int{}
	users := map[string][]string{}
	for _, n := range names {
		indeg[n] += 0
		for _, d := range deps(n) {
			if d == n || !in[d] {
				continue
			}
			indeg[n]++
			users[d] = append(users[d], n)
		}
	}
	var ready, out []string
	for _, n := range names {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		slices.SortFunc(ready, func(a, b string) int {
			if c := cmp.Compare(rank(a), rank(b)); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		for _, u := range users[n] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	// A cycle cannot reach here: validation rejects it (DW1040). Keep any
	// leftovers in rank order rather than lose them.
	if len(out) < len(names) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// transitiveDeps returns every map name reachable through deps from name,
// excluding name itself.
func transitiveDeps(name string, deps func(string) []string) []string {
	seen := map[string]bool{name: true}
	var out []string
	var walk func(string)
	walk = func(n string) {
		for _, d := range deps(n) {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				walk(d)
			}
		}
	}
	walk(name)
	return out
}

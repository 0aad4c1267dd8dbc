package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func TestLifecycleTransitions(t *testing.T) {
	t.Parallel()
	statuses := []Status{NotRunning, Initializing, Running, Paused, Resuming}
	actions := []Action{ActionRun, ActionPause, ActionStop}
	// The only edges a user action may take.
	want := map[[2]string]Status{
		{string(NotRunning), string(ActionRun)}: Initializing,
		{string(Running), string(ActionPause)}:  Paused,
		{string(Running), string(ActionStop)}:   NotRunning,
		{string(Paused), string(ActionRun)}:     Resuming,
		// Stop aborts an initial sync or a catch-up.
		{string(Initializing), string(ActionStop)}: NotRunning,
		{string(Resuming), string(ActionStop)}:     NotRunning,
	}
	for _, s := range statuses {
		for _, a := range actions {
			t.Run(string(s)+"/"+string(a), func(t *testing.T) {
				t.Parallel()
				got, err := Next("m", s, a)
				exp, ok := want[[2]string{string(s), string(a)}]
				if ok {
					if err != nil || got != exp {
						t.Fatalf("Next(%s, %s) = %s, %v; want %s", s, a, got, err, exp)
					}
					return
				}
				if err == nil {
					t.Fatalf("Next(%s, %s) = %s; want an error", s, a, got)
				}
				if problem.CodeOf(err) != problem.InvalidAction || !strings.Contains(err.Error(), string(s)) {
					t.Fatalf("error %q lacks the code or the current status", err)
				}
				for _, allowed := range Actions(s) {
					if !strings.Contains(err.Error(), string(allowed)) {
						t.Fatalf("error %q does not list allowed action %s", err, allowed)
					}
				}
			})
		}
	}
}

func TestDependencyOrderKeepsUserOrderWhereAllowed(t *testing.T) {
	t.Parallel()
	deps := map[string][]string{
		"customers":  {"currencies", "groups", "companies"},
		"groups":     {"companies"},
		"vendors":    {"currencies", "companies"},
		"currencies": nil,
		"companies":  nil,
	}
	rank := map[string]int{"currencies": 1, "companies": 2, "groups": 3, "customers": 4, "vendors": 5}
	tests := []struct {
		in, want []string
	}{
		{[]string{"customers", "groups", "companies", "currencies"}, []string{"currencies", "companies", "groups", "customers"}},
		{[]string{"vendors", "customers", "companies", "currencies", "groups"}, []string{"currencies", "companies", "groups", "customers", "vendors"}},
		{[]string{"groups", "customers"}, []string{"groups", "customers"}},
	}
	for _, tc := range tests {
		got := dependencyOrder(tc.in, func(n string) []string { return deps[n] }, func(n string) int { return rank[n] })
		if !slices.Equal(got, tc.want) {
			t.Errorf("dependencyOrder(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	got := transitiveDeps("customers", func(n string) []string { return deps[n] })
	slices.Sort(got)
	if want := []string{"companies", "currencies", "groups"}; !slices.Equal(got, want) {
		t.Errorf("transitiveDeps = %v, want %v", got, want)
	}
}

func TestConflictRuleIsAMaximum(t *testing.T) {
	t.Parallel()
	L, R := mapping.Left, mapping.Right
	tests := []struct {
		name string
		rule conflictRule
		prev *stamp
		wins bool
	}{
		{"nothing recorded", conflictRule{at: 5, from: L, master: R}, nil, true},
		{"later wins", conflictRule{at: 6, from: L, master: R}, &stamp{At: 5, Side: int(R)}, true},
		{"earlier loses", conflictRule{at: 4, from: L, master: L}, &stamp{At: 5, Side: int(R)}, false},
		{"tie, master wins", conflictRule{at: 5, from: R, master: R}, &stamp{At: 5, Side: int(L)}, true},
		{"tie, non-master loses", conflictRule{at: 5, from: L, master: R}, &stamp{At: 5, Side: int(R)}, false},
		{"same stamp again (redelivery) wins", conflictRule{at: 5, from: L, master: R}, &stamp{At: 5, Side: int(L)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.rule.wins(tc.prev); got != tc.wins {
				t.Fatalf("wins = %v, want %v", got, tc.wins)
			}
		})
	}
	// Order independence: for two writes a and b, exactly one wins against
	// the other, whichever is seen first.
	for _, a := range []conflictRule{{at: 1, from: L, master: R}, {at: 2, from: L, master: R}, {at: 2, from: L, master: L}} {
		for _, bt := range []int64{1, 2, 3} {
			b := conflictRule{at: bt, from: R, master: a.master}
			aBeatsB := a.wins(&stamp{At: b.at, Side: int(b.from)})
			bBeatsA := b.wins(&stamp{At: a.at, Side: int(a.from)})
			if aBeatsB == bBeatsA {
				t.Fatalf("a=%+v b=%+v: aBeatsB=%v bBeatsA=%v; exactly one must win", a, b, aBeatsB, bBeatsA)
			}
		}
	}
}

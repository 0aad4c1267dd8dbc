package engine

import (
	"slices"
	"strings"
	"testing"

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

package plan

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/dualwrite/dualwrite/internal/mapping"
)

func TestRuleWins(t *testing.T) {
	t.Parallel()
	L, R := mapping.Left, mapping.Right
	cases := []struct {
		name string
		rule Rule
		prev *Stamp
		want bool
	}{
		{"nothing recorded", Rule{At: 5, From: L, Master: R}, nil, true},
		{"later wins", Rule{At: 6, From: L, Master: R}, &Stamp{At: 5, Side: 1}, true},
		{"earlier loses", Rule{At: 4, From: L, Master: L}, &Stamp{At: 5, Side: 1}, false},
		{"tie, master wins", Rule{At: 5, From: R, Master: R}, &Stamp{At: 5, Side: 0}, true},
		{"tie, non-master loses", Rule{At: 5, From: L, Master: R}, &Stamp{At: 5, Side: 1}, false},
		{"same stamp again (redelivery) wins", Rule{At: 5, From: L, Master: R}, &Stamp{At: 5, Side: 0}, true},
		{"a delete is a stamp like any other", Rule{At: 7, From: R, Master: L}, &Stamp{At: 6, Side: 0, Deleted: true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.rule.Wins(tc.prev); got != tc.want {
				t.Errorf("Wins = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRuleOrdersAnyTwoWrites checks that for two writes of different
// sides exactly one beats the other, whichever is seen first.
func TestRuleOrdersAnyTwoWrites(t *testing.T) {
	t.Parallel()
	L, R := mapping.Left, mapping.Right
	for _, a := range []Rule{{At: 1, From: L, Master: R}, {At: 2, From: L, Master: R}, {At: 2, From: L, Master: L}} {
		for _, bt := range []int64{1, 2, 3} {
			b := Rule{At: bt, From: R, Master: a.Master}
			aBeatsB := a.Wins(b.Stamp())
			bBeatsA := b.Wins(a.Stamp())
			if aBeatsB == bBeatsA {
				t.Fatalf("a=%+v b=%+v: aBeatsB=%v bBeatsA=%v; exactly one must win", a, b, aBeatsB, bBeatsA)
			}
		}
	}
}

// TestRuleIsAMaximum checks the property convergence rests on: whatever
// order the writes of both sides are judged in, the one that ends up
// recorded is the same (the latest, the master's at a tie).
func TestRuleIsAMaximum(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		master := mapping.Side(rapid.IntRange(0, 1).Draw(t, "master"))
		n := rapid.IntRange(1, 12).Draw(t, "writes")
		var writes []Rule
		for i := 0; i < n; i++ {
			writes = append(writes, Rule{
				At:     int64(rapid.IntRange(0, 5).Draw(t, "at")),
				From:   mapping.Side(rapid.IntRange(0, 1).Draw(t, "side")),
				Master: master,
			})
		}
		judge := func(order []int) Stamp {
			var rec *Stamp
			for _, i := range order {
				if writes[i].Wins(rec) {
					rec = writes[i].Stamp()
				}
			}
			return *rec
		}
		perm := rapid.Permutation(indexes(n)).Draw(t, "order")
		a, b := judge(indexes(n)), judge(perm)
		if a.At != b.At || a.Side != b.Side {
			t.Fatalf("order changed the verdict: %+v vs %+v for %+v", a, b, writes)
		}
	})
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

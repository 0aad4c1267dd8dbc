package connector

import (
	"errors"
	"reflect"
	"testing"
)

// TestWriteRunsSplitsAroundABadRow: a run with one bad row is split until
// the bad row is written on its own, the rest in bulk, all in batch order.
func TestWriteRunsSplitsAroundABadRow(t *testing.T) {
	const n, bad = 100, 70
	runEnd := func(i int) int {
		if i < 4 {
			return i + 1 // four writes that are not part of a run
		}
		return n
	}
	var order []int
	var attempts int
	bulk := func(lo, hi int) (bool, error) {
		attempts++
		if lo <= bad && bad < hi {
			return false, nil
		}
		for k := lo; k < hi; k++ {
			order = append(order, k)
		}
		return true, nil
	}
	var singles []int
	one := func(i int) error {
		order = append(order, i)
		singles = append(singles, i)
		return nil
	}
	if err := WriteRuns(n, runEnd, bulk, one, true); err != nil {
		t.Fatal(err)
	}
	for i, k := range order {
		if i != k {
			t.Fatalf("writes out of order: %v", order)
		}
	}
	if len(order) != n {
		t.Fatalf("%d writes, want %d", len(order), n)
	}
	if len(singles) > 4+2*MinBulkRun || attempts > 12 {
		t.Errorf("%d single writes and %d bulk attempts for one bad row: %v", len(singles), attempts, singles)
	}

	// Without split a failed run goes row by row; an error stops it.
	boom := errors.New("boom")
	singles = nil
	err := WriteRuns(40, func(int) int { return 40 }, func(int, int) (bool, error) { return false, nil },
		func(i int) error {
			singles = append(singles, i)
			if i == 2 {
				return boom
			}
			return nil
		}, false)
	if !errors.Is(err, boom) || !reflect.DeepEqual(singles, []int{0, 1, 2}) {
		t.Errorf("err %v, singles %v; want boom after 0 1 2", err, singles)
	}
}

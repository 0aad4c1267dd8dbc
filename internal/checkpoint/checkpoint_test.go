package checkpoint

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

type recorder struct {
	steps   []string
	failSet error
	failAck error
}

func (r *recorder) SetSidePosition(_ context.Context, side string, p change.Position) error {
	r.steps = append(r.steps, "set "+side+" "+p.String())
	return r.failSet
}

func (r *recorder) Ack(_ context.Context, p change.Position) error {
	r.steps = append(r.steps, "ack "+p.String())
	return r.failAck
}

func TestCommitRecordsBeforeAcknowledging(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		failSet   error
		failAck   error
		wantSteps int
		wantLag   float64 // at t0+60s
	}{
		{"recorded, acknowledged, handled", nil, nil, 2, 0},
		{"not recorded: not acknowledged, still pending", errors.New("store down"), nil, 1, 60},
		{"not acknowledged: still pending", nil, errors.New("source down"), 2, 60},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{failSet: tc.failSet, failAck: tc.failAck}
			c := New("erp", r)
			c.Captured([]change.Tx{{CommitTime: t0}}, t0)
			err := c.Commit(context.Background(), r, change.Position{LSN: 7})
			if (err != nil) != (tc.failSet != nil || tc.failAck != nil) {
				t.Fatalf("Commit = %v", err)
			}
			if len(r.steps) != tc.wantSteps || r.steps[0] != "set erp "+(change.Position{LSN: 7}).String() {
				t.Fatalf("steps = %v", r.steps)
			}
			if got := c.Lag(t0.Add(time.Minute)); got != tc.wantLag {
				t.Errorf("lag = %v, want %v", got, tc.wantLag)
			}
		})
	}
}

func TestLagIsTheOldestUncheckpointed(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	c := New("crm", &recorder{})
	if c.Lag(t0) != 0 {
		t.Fatal("an idle side has lag")
	}
	// The oldest counts; a commit time ahead of our clock counts from now.
	c.Captured([]change.Tx{{CommitTime: t0.Add(5 * time.Second)}, {CommitTime: t0.Add(2 * time.Second)}, {CommitTime: t0.Add(time.Hour)}}, t0.Add(10*time.Second))
	if got := c.Lag(t0.Add(12 * time.Second)); got != 10 {
		t.Errorf("lag = %v, want 10 (the oldest, 2 s)", got)
	}
	if got := c.Lag(t0.Add(-time.Minute)); got != 0 {
		t.Errorf("lag before the change = %v, want 0", got)
	}
}

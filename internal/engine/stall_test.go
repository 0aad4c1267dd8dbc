package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

func TestStallOfKeepsTheCausesCode(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		err       error
		code, msg string
	}{
		{"coded", problem.New(problem.LogPurged, "slot gone"), "DW2010", "slot gone"},
		{"wrapped coded", fmt.Errorf("map items: %w", problem.Wrap(problem.ConnectionFailed, errors.New("refused"), "cannot connect")),
			"DW1000", "map items: DW1000 cannot connect: refused"},
		{"uncoded", errors.New("disk full"), "DW2050", "disk full"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := stallOf("crm", tc.err, at)
			if c.Kind != ConditionStalled || c.Code != tc.code || c.Message != tc.msg || c.Side != "crm" || !c.Since.Equal(at) {
				t.Errorf("stallOf(%v) = %+v, want code %s message %q", tc.err, c, tc.code, tc.msg)
			}
		})
	}
}

package queue

import (
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
)

func TestNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mapName, direction string
		stream, subject    string
	}{
		{"accounts", "erp", "DW_accounts", "DW.q.accounts.erp"},
		{"Account-Map2", "crm", "DW_Account-Map2", "DW.q.Account-Map2.crm"},
		{"a.b", "e r p", "DW_a_2Eb", "DW.q.a_2Eb.e_20r_20p"},
		{"a_b", "x>*", "DW_a_5Fb", "DW.q.a_5Fb.x_3E_2A"},
		{"kunde/konto", "ërp", "DW_kunde_2Fkonto", "DW.q.kunde_2Fkonto._C3_ABrp"},
	}
	for _, tc := range tests {
		t.Run(tc.mapName, func(t *testing.T) {
			t.Parallel()
			if got := streamName("DW", tc.mapName); got != tc.stream {
				t.Errorf("stream %q, want %q", got, tc.stream)
			}
			if got := subject("DW", tc.mapName, tc.direction); got != tc.subject {
				t.Errorf("subject %q, want %q", got, tc.subject)
			}
		})
	}
}

// TestEscapeInjective checks that names which a naive replacement would
// merge keep distinct streams and message ids.
func TestEscapeInjective(t *testing.T) {
	t.Parallel()
	groups := [][]string{
		{"a.b", "a_b", "a b", "a_2Eb", "a__2Eb"},
		{"x", "X", "x_", "_x"},
	}
	for _, g := range groups {
		seen := map[string]string{}
		for _, name := range g {
			e := escape(name)
			if prev, ok := seen[e]; ok {
				t.Errorf("%q and %q both escape to %q", prev, name, e)
			}
			seen[e] = name
		}
	}
	p := change.Position{LSN: 5, Token: "t"}
	if msgID("a/b", "c", p) == msgID("a", "b/c", p) {
		t.Error("message ids of map a/b side c and map a side b/c collide")
	}
	if msgID("m", "erp", change.Position{LSN: 5, Sub: 1}) == msgID("m", "erp", change.Position{LSN: 5}) {
		t.Error("message ids of two parts of one transaction collide")
	}
}

func TestValidPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"DW", true}, {"link-1", true}, {"", false}, {"a.b", false}, {"a_b", false},
		{"a b", false}, {">", false}, {"0123456789012345678901234567890123", false},
	}
	for _, tc := range tests {
		if got := validPrefix(tc.prefix); got != tc.ok {
			t.Errorf("validPrefix(%q) = %v, want %v", tc.prefix, got, tc.ok)
		}
	}
}

func TestBatchGetSupported(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{"2.15.2": true, "2.11.0": true, "3.0.0": true, "2.10.22": false, "2.9.10": false, "": false, "x.y": false}
	for v, want := range tests {
		if got := batchGetSupported(v); got != want {
			t.Errorf("batchGetSupported(%q) = %v, want %v", v, got, want)
		}
	}
}

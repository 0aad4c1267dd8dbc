// Package plan holds the conflict rule (docs/adr/20261122-conflict-rule.md),
// pure and free of I/O: per column, the write with the later source commit
// time wins; at equal times the map's master wins. A record's existence is
// one more "column": a delete competes with the latest insert or update of
// the record. The rule is a maximum over all writes, so the result does not
// depend on the order in which the engine sees the two sides' changes, and
// both sides converge.
//
// The shadow keeps, per record and column, the stamp of the winning write.
package plan

import (
	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/mapping"
)

// Stamp identifies a write: its commit time (ns) and side. Its JSON form
// is persisted in the control store.
type Stamp struct {
	At      int64 `json:"at"`
	Side    int   `json:"side"`
	Deleted bool  `json:"deleted,omitempty"`
	// Vals holds a winning column's value as each side stores it ("0"
	// left, "1" right): the reconciliation writes it wherever a side
	// holds something else.
	Vals change.Row `json:"vals,omitempty"`
}

// SideKey is the key of side s in Stamp.Vals.
func SideKey(s mapping.Side) string {
	if s == mapping.Left {
		return "0"
	}
	return "1"
}

// Shadow is a record's conflict state: the stamp of the write that
// decided its existence, and of the write that decided each column (by
// pair index).
type Shadow struct {
	Row  *Stamp         `json:"row,omitempty"`
	Cols map[int]*Stamp `json:"cols,omitempty"`
}

// Rule judges one write, from side From at time At, against recorded
// stamps; Master breaks ties.
type Rule struct {
	At     int64
	From   mapping.Side
	Master mapping.Side
}

// Wins reports whether the write being planned beats the recorded stamp.
// A write beats nothing, an older write, and an equal-time write from the
// other side when its own side is the master. The same stamp again (a
// redelivery) wins, which keeps replays idempotent.
func (r Rule) Wins(prev *Stamp) bool {
	if prev == nil {
		return true
	}
	if r.At != prev.At {
		return r.At > prev.At
	}
	if prev.Side == int(r.From) {
		return true
	}
	return r.From == r.Master
}

// Stamp returns the stamp of the write being judged.
func (r Rule) Stamp() *Stamp { return &Stamp{At: r.At, Side: int(r.From)} }

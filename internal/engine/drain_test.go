package engine

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/queue"
)

// TestReplayGroupsWithinBounds: the catch-up replay groups consecutive
// queued transactions of one side as live apply does (whole, in order,
// within the transaction and change bounds), a large transaction alone,
// and drops an entry from an unknown side on its own.
func TestReplayGroupsWithinBounds(t *testing.T) {
	t.Parallel()
	e := &Engine{cfg: &config.Config{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		sides: [2]*sideLoop{{idx: mapping.Left, name: "erp"}, {idx: mapping.Right, name: "crm"}}}
	e.cfg.Engine.GroupTransactions = 3
	ms := &mapState{name: "customers"}
	en := func(seq uint64, side string, changes int) queue.Entry {
		return queue.Entry{Seq: seq, Direction: side, Tx: txOf(seq*10, changes)}
	}
	entries := []queue.Entry{
		en(1, "erp", 1), en(2, "erp", 1), en(3, "erp", 1), en(4, "erp", 1), // the transaction bound
		en(5, "crm", 2), en(6, "erp", 2), // a change of side
		en(7, "erp", 10_000), en(8, "erp", 1), // larger than a group: alone
		en(9, "erp", 200), en(10, "erp", 100), en(11, "erp", 1), // the change bound
		en(12, "pos", 1), en(13, "erp", 1),
	}
	type want struct {
		from        mapping.Side
		lsns        []uint64
		first, last uint64
	}
	wants := []want{
		{mapping.Left, []uint64{10, 20, 30}, 1, 3},
		{mapping.Left, []uint64{40}, 4, 4},
		{mapping.Right, []uint64{50}, 5, 5},
		{mapping.Left, []uint64{60}, 6, 6},
		{mapping.Left, []uint64{70}, 7, 7},
		{mapping.Left, []uint64{80, 90}, 8, 9},
		{mapping.Left, []uint64{100, 110}, 10, 11},
		{-1, []uint64{120}, 12, 12}, // kept, to be parked as catch-up errors
		{mapping.Left, []uint64{130}, 13, 13},
	}
	for i, w := range wants {
		if len(entries) == 0 {
			t.Fatalf("group %d: no entries left", i)
		}
		g := e.replayGroup(ms, entries)
		if g.from != w.from || !slices.Equal(lsns(g.txs), w.lsns) || g.first != w.first || g.last != w.last || g.taken != int(w.last-w.first+1) {
			t.Fatalf("group %d = from %d lsns %v seq %d..%d taken %d; want from %d lsns %v seq %d..%d", i, g.from, lsns(g.txs), g.first, g.last, g.taken, w.from, w.lsns, w.first, w.last)
		}
		entries = entries[g.taken:]
	}
	if len(entries) != 0 {
		t.Errorf("%d entries left", len(entries))
	}
}

// TestReplayReadBounds: reads take fewer entries when they are large.
func TestReplayReadBounds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int64
		want int
	}{{0, 1}, {1, 1}, {37, 37}, {drainBatch, drainBatch}, {1 << 40, drainBatch}} {
		if got := clampRead(c.n); got != c.want {
			t.Errorf("clampRead(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	// 10,000-change transactions are read one at a time; single-row ones
	// 200 at a time.
	if got := clampRead(int64(drainReadRows * 5 / 50_000)); got != 1 {
		t.Errorf("five 10,000-change entries: next read %d, want 1", got)
	}
	if got := clampRead(int64(drainReadRows * 200 / 200)); got != drainBatch {
		t.Errorf("single-change entries: next read %d, want %d", got, drainBatch)
	}
}

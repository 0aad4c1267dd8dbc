package connectortest

import (
	"errors"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// testSourceIdentity checks that a progress table keeps the source of
// every position and that a position of another source is never compared
// with this one's: Apply and AppliedPosition refuse it with DW2041 until
// it is reset, and nothing of the refused batch is written.
func testSourceIdentity(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	si, ok := c.(connector.SourceIdentifier)
	if !ok {
		t.Fatal("the connector does not implement connector.SourceIdentifier")
	}
	id, err := si.SourceIdentity(ctx)
	if err != nil || id == "" {
		t.Fatalf("SourceIdentity = %q, %v", id, err)
	}
	if again, err := si.SourceIdentity(ctx); err != nil || again != id {
		t.Fatalf("SourceIdentity is not stable: %q then %q (%v)", id, again, err)
	}
	pk, ok := c.(connector.ProgressKeeper)
	if !ok {
		t.Fatal("the connector does not implement connector.ProgressKeeper")
	}
	s.create("dw_apply", applyCols, []string{"id"})
	batch := func(lsn uint64, name string) connector.Batch {
		return connector.Batch{Stream: "m:a->b", Position: change.Position{LSN: lsn}, Writes: []connector.Write{
			upsert("dw_apply", 1, change.Row{"name": name}),
		}}
	}

	// The old source recorded a large position.
	pk.BindSource("old-source")
	apply(ctx, t, c, batch(4305728688, "from the old source"))

	// The side's source changed: its positions are smaller, and must not
	// be compared with the old one's.
	pk.BindSource("new-source")
	_, err = c.Apply(ctx, batch(100, "from the new source"))
	if !errors.Is(err, connector.ErrForeignPosition) || problem.CodeOf(err) != problem.ForeignPosition {
		t.Fatalf("Apply over another source's position: err = %v, want DW2041 wrapping ErrForeignPosition", err)
	}
	for _, want := range []string{"m:a->b", "new-source", "old-source"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not name %q", err, want)
		}
	}
	if _, err := c.AppliedPosition(ctx, "m:a->b"); !errors.Is(err, connector.ErrForeignPosition) {
		t.Fatalf("AppliedPosition of another source's position: err = %v, want ErrForeignPosition", err)
	}
	expectRows(ctx, t, c, "dw_apply", applyCols, change.Row{"id": int64(1), "name": "from the old source", "qty": int64(5), "note": nil})

	progress, err := pk.Progress(ctx)
	if err != nil || len(progress) != 1 || progress[0].Source != "old-source" || progress[0].Position.LSN != 4305728688 {
		t.Fatalf("Progress = %+v, %v; want the old source's position", progress, err)
	}

	// A deliberate reset: the new source's batch applies and records it.
	if err := pk.ResetProgress(ctx, "m:a->b"); err != nil {
		t.Fatal(err)
	}
	if res := apply(ctx, t, c, batch(100, "from the new source")); res.Skipped {
		t.Fatal("the first batch after a reset was skipped")
	}
	expectPosition(ctx, t, c, "m:a->b", change.Position{LSN: 100})
	expectRows(ctx, t, c, "dw_apply", applyCols, change.Row{"id": int64(1), "name": "from the new source", "qty": int64(5), "note": nil})
	if progress, err := pk.Progress(ctx); err != nil || len(progress) != 1 || progress[0].Source != "new-source" {
		t.Fatalf("Progress after the reset = %+v, %v; want the new source", progress, err)
	}

	// A position recorded without a source (an earlier version) is
	// refused too, until it is stamped deliberately.
	pk.BindSource("")
	apply(ctx, t, c, connector.Batch{Stream: "m2", Position: change.Position{LSN: 5}, Writes: []connector.Write{upsert("dw_apply", 2, change.Row{"name": "x"})}})
	pk.BindSource("new-source")
	if _, err := c.AppliedPosition(ctx, "m2"); !errors.Is(err, connector.ErrForeignPosition) {
		t.Fatalf("a position without a source: err = %v, want ErrForeignPosition", err)
	}
	if n, err := pk.StampProgress(ctx, "new-source"); err != nil || n != 1 {
		t.Fatalf("StampProgress = %d, %v; want 1 stamped", n, err)
	}
	expectPosition(ctx, t, c, "m2", change.Position{LSN: 5})
}

// testOwner checks the owner row a database keeps per link.
func testOwner(t *testing.T, h Harness) {
	c, _ := open(t, h)
	ctx := ctxFor(t)
	ok, isKeeper := c.(connector.OwnerKeeper)
	if !isKeeper {
		t.Fatal("the connector does not implement connector.OwnerKeeper")
	}
	if owner, err := ok.Owner(ctx, "items"); err != nil || owner != "" {
		t.Fatalf("Owner of an unclaimed link = %q, %v; want none", owner, err)
	}
	if err := ok.SetOwner(ctx, "items", "instance-a"); err != nil {
		t.Fatal(err)
	}
	if err := ok.SetOwner(ctx, "other", "instance-b"); err != nil {
		t.Fatal(err)
	}
	if err := ok.SetOwner(ctx, "items", "instance-c"); err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{"items": "instance-c", "other": "instance-b"} {
		if owner, err := ok.Owner(ctx, link); err != nil || owner != want {
			t.Errorf("Owner(%s) = %q, %v; want %q", link, owner, err, want)
		}
	}
}

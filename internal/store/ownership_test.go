package store

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func TestLockDirIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir)
	if problem.CodeOf(err) != problem.DataDirLocked || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v; want DW2040 naming %s and pid %d", err, dir, os.Getpid())
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = again.Unlock()
	_ = again.Unlock() // idempotent
}

func TestInstanceAndSideSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.InstanceID(ctx)
	if err != nil || len(id) != 32 {
		t.Fatalf("InstanceID = %q, %v", id, err)
	}
	if err := s.SetSidePosition(ctx, "erp", change.Position{LSN: 42}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSideSource(ctx, "erp", "postgres:1/erp/slot"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if again, err := s.InstanceID(ctx); err != nil || again != id {
		t.Fatalf("InstanceID after reopening = %q (%v), want %q", again, err, id)
	}
	if src, err := s.SideSource(ctx, "erp"); err != nil || src != "postgres:1/erp/slot" {
		t.Fatalf("SideSource = %q, %v", src, err)
	}
	if err := s.ResetSide(ctx, "erp"); err != nil {
		t.Fatal(err)
	}
	pos, err := s.SidePosition(ctx, "erp")
	src, err2 := s.SideSource(ctx, "erp")
	if err != nil || err2 != nil || !pos.IsZero() || src != "" {
		t.Fatalf("after ResetSide: position %v source %q (%v, %v); want both forgotten", pos, src, err, err2)
	}
}

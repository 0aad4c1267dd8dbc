package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dualwrite/dualwrite/internal/connector/sqlite"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func dirState(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

// TestOpenReadOnlyWritesNothing: describing and checking through a
// read-only connector leaves the directory byte for byte as it was, and a
// missing file is an error, not a new database.
func TestOpenReadOnlyWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "erp.db")
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close() // checkpoints and removes the -wal and -shm files
	before := dirState(t, dir)

	c, err := sqlite.OpenReadOnly(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := c.Describe(ctx, "customers")
	if err != nil || len(tab.Columns) != 2 {
		t.Fatalf("Describe: %+v, %v", tab, err)
	}
	if probs := c.Check(ctx, []string{"customers", "nosuch"}); len(probs) != 1 || probs[0].Code != string(problem.UnknownTable) {
		t.Fatalf("Check: %+v", probs)
	}
	c.Close()
	after := dirState(t, dir)
	if len(before) != len(after) {
		t.Fatalf("files before %v, after %v", keys(before), keys(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}

	missing := filepath.Join(dir, "mistyped.db")
	if _, err := sqlite.OpenReadOnly(ctx, missing, sqlite.Options{}); problem.CodeOf(err) != problem.ConnectionFailed {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the missing file was created (%v)", err)
	}
}

func keys(m map[string][32]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

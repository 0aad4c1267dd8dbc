package queue

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestEntryGolden pins the stored form of an entry: queues written by one
// release must be readable by the next.
func TestEntryGolden(t *testing.T) {
	t.Parallel()
	e := entry("account map", "erp", 42)
	got, err := encodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", "entry.golden.json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("encoded entry differs from %s:\n%s", path, pretty.Bytes())
	}
	back, err := decodeEntry(7, want)
	if err != nil {
		t.Fatal(err)
	}
	e.Seq = 7
	if !reflect.DeepEqual(back, e) {
		t.Errorf("decoded golden entry:\n got %+v\nwant %+v", back, e)
	}
}

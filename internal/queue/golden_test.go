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

// TestDecodeStamp checks that the head-only decoding Stats uses reads the
// same map, direction and enqueue time as a full decode, from the stored
// form and from a compact one, and falls back to a full decode when the
// head is in another order.
func TestDecodeStamp(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(filepath.Join("testdata", "entry.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	var reordered map[string]json.RawMessage
	if err := json.Unmarshal(want, &reordered); err != nil {
		t.Fatal(err)
	}
	// encoding/json writes map keys sorted: "tx" is not last any more
	// than "direction" is first, so the fallback decodes in full.
	other, err := json.Marshal(reordered)
	if err != nil {
		t.Fatal(err)
	}
	full, err := decodeEntry(7, want)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"stored": want, "compact": compact.Bytes(), "other order": other} {
		got, err := decodeStamp(7, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Seq != 7 || got.Map != full.Map || got.Direction != full.Direction || !got.EnqueuedAt.Equal(full.EnqueuedAt) {
			t.Errorf("%s: decodeStamp = %q %q %v, want %q %q %v", name, got.Map, got.Direction, got.EnqueuedAt, full.Map, full.Direction, full.EnqueuedAt)
		}
	}
}

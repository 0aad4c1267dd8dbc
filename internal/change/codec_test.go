package change

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleTx() Tx {
	at := time.Date(2026, 11, 22, 10, 30, 0, 123456789, time.UTC)
	return Tx{
		ID:         "xid 42",
		Position:   Position{LSN: 1 << 40, Sub: 2, Token: "mysql-bin.000007|0-1-9"},
		CommitTime: at,
		Changes: []Change{{
			Table: "custtable",
			Op:    Update,
			Old:   Row{"accountnum": "US-001", "name": "O'Brien \"quoted\" \\ 😀", "credit": Decimal("-12345678901234.5600")},
			New: Row{
				"accountnum": "US-001", "name": "Zürich", "credit": Decimal("0.0100"), "qty": int64(-9223372036854775808),
				"ratio": 0.1, "active": true, "blob": []byte{0, 1, 254, 255}, "born": at, "note": nil,
			},
			OldComplete: true,
			Unchanged:   []string{"bigtext"},
			At:          at,
		}},
	}
}

// TestTxRoundTrip: a transaction read back from its persisted form has
// exactly the values and Go types it was written with.
func TestTxRoundTrip(t *testing.T) {
	t.Parallel()
	tx := sampleTx()
	b, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	var back Tx
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tx, back) {
		t.Fatalf("round trip changed the transaction:\n got %#v\nwant %#v", back, tx)
	}
}

// TestTxGolden pins the persisted format (the durable queue and parked
// catch-up errors hold it across upgrades). Rewrite with -update.
func TestTxGolden(t *testing.T) {
	t.Parallel()
	b, err := json.MarshalIndent(sampleTx(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/tx.golden.json"
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	// Map keys marshal sorted, so the text is stable.
	if string(b) != string(want) {
		t.Fatalf("persisted format changed; if on purpose, rerun with -update:\n%s", b)
	}
	var back Tx
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatalf("golden file no longer decodes: %v", err)
	}
}

func TestDecodeRejectsUnknownTag(t *testing.T) {
	t.Parallel()
	if _, err := DecodeValue(json.RawMessage(`{"t":"q","v":"1"}`)); err == nil {
		t.Fatal("unknown tag accepted")
	}
	if _, err := EncodeValue(int32(1)); err == nil {
		t.Fatal("non-canonical type accepted")
	}
}

func TestPositionOrder(t *testing.T) {
	t.Parallel()
	ps := []Position{{LSN: 1}, {LSN: 1, Sub: 1}, {LSN: 2}, {LSN: 2, Sub: 3}}
	for i := range ps {
		for j := range ps {
			if got, want := ps[i].Less(ps[j]), i < j; got != want {
				t.Errorf("%v.Less(%v) = %v", ps[i], ps[j], got)
			}
		}
	}
}

// TestOpRoundTrip: every op, the truncate included, survives the
// persisted form (a queued truncate is replayed as one).
func TestOpRoundTrip(t *testing.T) {
	t.Parallel()
	for _, op := range []Op{Insert, Update, Delete, Truncate} {
		b, err := json.Marshal(Change{Table: "t", Op: op})
		if err != nil {
			t.Fatal(err)
		}
		var back Change
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back.Op != op {
			t.Errorf("%s read back as %s", op, back.Op)
		}
	}
	if _, err := ParseOp("op(9)"); err == nil {
		t.Error("an unknown op was accepted")
	}
}

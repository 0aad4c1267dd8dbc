package connectortest

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// sampleValues are canonical values every driver must round-trip exactly.
func sampleValues() map[connector.Kind][]any {
	long := strings.Repeat("0123456789abcdefghij\u00e9\u65e5\U0001F600", 100*1024/30)
	blob := make([]byte, 16*1024)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	ts := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			panic(err)
		}
		return tm.UTC()
	}
	return map[connector.Kind][]any{
		connector.KindInt:   {int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), int64(42)},
		connector.KindFloat: {0.0, -0.25, 3.141592653589793, 1e300, -2.5e-10},
		connector.KindDecimal: {change.Decimal("0.0000"), change.Decimal("-12345678901234.5600"), change.Decimal("12.3400"),
			change.Decimal("99999999999999999999999999.9999"), change.Decimal("-0.0001")},
		connector.KindText: {"", `quotes ' and " and \ backslash \\ \n`, "unicode \u00e9\u00fc \u65e5\u672c \U0001F600\U0001F389", long,
			"line\nbreak\ttab\r\n", "'; DROP TABLE x; --", "{\"looks\":\"like json\"}", "x'00'"},
		connector.KindBool:  {true, false},
		connector.KindBytes: {[]byte{0, 1, 2, 255}, []byte("\x00\xff\xfe not utf-8 'q' \"d\""), blob, []byte("x'41'")},
		connector.KindTime: {ts("2024-05-06 07:08:09.123456"), ts("2000-01-01 00:00:00"), ts("1999-12-31 23:59:59.999999"),
			ts("2038-01-19 03:14:08.000001")},
		connector.KindDate: {ts("2024-02-29 00:00:00"), ts("1970-01-01 00:00:00"), ts("2099-12-31 00:00:00")},
		connector.KindJSON: {`{"a": 1, "b": [true, null, "x"]}`, `[]`, `"str"`, `{"nested": {"k": "v \u00fc \ud83d\ude00 \"q\" \\"}}`},
		connector.KindUUID: {"123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000",
			"ffffffff-ffff-ffff-ffff-ffffffffffff"},
	}
}

// valueTable creates a table with an id and one nullable column per kind,
// and returns its columns and the rows (by id) that hold every sample
// value, plus a row of NULLs.
func valueTable(s schema, name string) ([]column, []change.Row) {
	cols := []column{{name: "id", kind: connector.KindInt, notNull: true}}
	samples := sampleValues()
	n := 0
	for _, k := range allKinds {
		cols = append(cols, column{name: "c_" + string(k), kind: k})
		n = max(n, len(samples[k]))
	}
	s.create(name, cols, []string{"id"})
	var want []change.Row
	for i := 0; i <= n; i++ {
		r := change.Row{"id": int64(i + 1)}
		for _, k := range allKinds {
			var v any
			if i < len(samples[k]) {
				v = samples[k][i]
			}
			r["c_"+string(k)] = v
		}
		want = append(want, r)
	}
	return cols, want
}

func testValues(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	cols, want := valueTable(s, "dw_values")
	var writes []connector.Write
	for _, r := range want {
		vals := r.Clone()
		delete(vals, "id")
		writes = append(writes, connector.Write{Table: "dw_values", Op: connector.Upsert, Key: change.Row{"id": r["id"]}, Values: vals, Ref: int(r["id"].(int64))})
	}
	apply(ctx, t, c, connector.Batch{Stream: "v", Position: change.Position{LSN: 1}, Writes: writes})
	expectRows(ctx, t, c, "dw_values", cols, want...)

	// Every value is also usable as a key for lookups.
	kinds := kindsOf(cols)
	for _, k := range allKinds {
		if k == connector.KindFloat || k == connector.KindJSON {
			continue // equality on floats and json text is not portable
		}
		col := "c_" + string(k)
		for _, r := range want {
			got, err := c.Scan(ctx, connector.ScanRequest{Table: "dw_values", OrderBy: []string{"id"}, Equal: change.Row{col: r[col]}})
			if err != nil {
				t.Fatalf("Scan where %s = %s: %v", col, show(r[col]), err)
			}
			if r[col] == nil {
				continue // every sample list is shorter than the table, several NULL rows
			}
			if len(got) != 1 {
				t.Errorf("Scan where %s = %s: %d rows, want 1", col, show(r[col]), len(got))
				continue
			}
			if d := diffRow(kinds, r, got[0]); d != "" {
				t.Errorf("Scan where %s = %s: %s", col, show(r[col]), d)
			}
		}
	}

	// Updating every column to NULL and back.
	var nulls []connector.Write
	for _, r := range want {
		vals := change.Row{}
		for n := range r {
			if n != "id" {
				vals[n] = nil
			}
		}
		nulls = append(nulls, connector.Write{Table: "dw_values", Op: connector.UpdateOnly, Key: change.Row{"id": r["id"]}, Values: vals, Ref: 1})
	}
	apply(ctx, t, c, connector.Batch{Stream: "v", Position: change.Position{LSN: 2}, Writes: nulls})
	for _, r := range rows(ctx, t, c, "dw_values") {
		for n, v := range r {
			if n != "id" && v != nil {
				t.Errorf("row %v column %s = %s after update to NULL", r["id"], n, show(v))
			}
		}
	}
	apply(ctx, t, c, connector.Batch{Stream: "v", Position: change.Position{LSN: 3}, Writes: writes})
	expectRows(ctx, t, c, "dw_values", cols, want...)
}

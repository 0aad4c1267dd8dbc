package connectortest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

var allKinds = []connector.Kind{
	connector.KindInt, connector.KindFloat, connector.KindDecimal, connector.KindText,
	connector.KindBool, connector.KindBytes, connector.KindTime, connector.KindDate,
	connector.KindJSON, connector.KindUUID,
}

func testDescribe(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	cols := []column{
		{name: "id", kind: connector.KindInt, notNull: true},
		{name: "ext", kind: connector.KindInt, notNull: true},
		{name: "region", kind: connector.KindInt, notNull: true},
		{name: "seq", kind: connector.KindInt, notNull: true},
		{name: "qty", kind: connector.KindInt, notNull: true, dflt: "7"},
		{name: "label", kind: connector.KindText, notNull: true},
	}
	for _, k := range allKinds {
		cols = append(cols, column{name: "k_" + string(k), kind: k})
	}
	s.create("dw_describe", cols, []string{"id"}, []string{"ext"}, []string{"region", "seq"})

	tbl, err := c.Describe(ctx, "dw_describe")
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if tbl.Name != "dw_describe" {
		t.Errorf("Name = %q, want dw_describe", tbl.Name)
	}
	if len(tbl.Columns) != len(cols) {
		t.Errorf("got %d columns, want %d: %+v", len(tbl.Columns), len(cols), tbl.Columns)
	}
	for i, want := range cols {
		got, ok := tbl.Column(want.name)
		if !ok {
			t.Errorf("column %s missing", want.name)
			continue
		}
		if i < len(tbl.Columns) && tbl.Columns[i].Name != want.name {
			t.Errorf("column %d is %s, want %s (declaration order)", i, tbl.Columns[i].Name, want.name)
		}
		if got.Kind != want.kind {
			t.Errorf("column %s (type %q): Kind = %s, want %s", want.name, got.Type, got.Kind, want.kind)
		}
		if got.Type == "" {
			t.Errorf("column %s: Type is empty", want.name)
		}
		if got.Nullable == want.notNull {
			t.Errorf("column %s: Nullable = %v, want %v", want.name, got.Nullable, !want.notNull)
		}
	}
	for name, want := range map[string]bool{"qty": true, "ext": false, "label": false} {
		if got, _ := tbl.Column(name); got.HasDefault != want {
			t.Errorf("column %s: HasDefault = %v, want %v", name, got.HasDefault, want)
		}
	}
	if !slices.Equal(tbl.PrimaryKey, []string{"id"}) {
		t.Errorf("PrimaryKey = %v, want [id]", tbl.PrimaryKey)
	}
	var got []string
	for _, u := range tbl.Unique {
		got = append(got, strings.Join(u, ","))
	}
	sort.Strings(got)
	if want := []string{"ext", "id", "region,seq"}; !slices.Equal(got, want) {
		t.Errorf("Unique = %v, want %v", got, want)
	}
	if !tbl.HasUnique([]string{"seq", "region"}) {
		t.Errorf("HasUnique(seq, region) = false")
	}

	_, err = c.Describe(ctx, "dw_missing")
	if !errors.Is(err, connector.ErrNoTable) {
		t.Errorf("Describe(missing table) error = %v, want one wrapping connector.ErrNoTable", err)
	}
}

func testScan(t *testing.T, h Harness) {
	c, s := open(t, h)
	ctx := ctxFor(t)
	cols := []column{
		{name: "tenant", kind: connector.KindInt, notNull: true},
		{name: "id", kind: connector.KindInt, notNull: true},
		{name: "company", kind: connector.KindText},
		{name: "val", kind: connector.KindText},
	}
	s.create("dw_scan", cols, []string{"tenant", "id"})
	var all []change.Row
	// Insert out of key order so that the scan has to sort.
	for _, tenant := range []int64{3, 1, 2} {
		for _, id := range []int64{5, -2, 9, 1, 12, 3, 0} {
			var company any
			switch (id + tenant) % 3 {
			case 0:
				company = "acme"
			case 1:
				company = "globex"
			}
			val := fmt.Sprintf("v%d.%d", tenant, id)
			s.insert("dw_scan", names(cols), tenant, id, company, val)
			all = append(all, change.Row{"tenant": tenant, "id": id, "company": company, "val": val})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a["tenant"] != b["tenant"] {
			return a["tenant"].(int64) < b["tenant"].(int64)
		}
		return a["id"].(int64) < b["id"].(int64)
	})
	kinds := kindsOf(cols)

	filter := func(eq change.Row) []change.Row {
		var out []change.Row
		for _, r := range all {
			match := true
			for k, v := range eq {
				if r[k] != v {
					match = false
				}
			}
			if match {
				out = append(out, r)
			}
		}
		return out
	}

	for _, tc := range []struct {
		name  string
		equal change.Row
		limit int
	}{
		{"all in pages of 4", nil, 4},
		{"all in one chunk", nil, 0},
		{"equal text", change.Row{"company": "acme"}, 2},
		{"equal null", change.Row{"company": nil}, 3},
		{"equal two columns", change.Row{"company": "globex", "tenant": int64(2)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := filter(tc.equal)
			var got []change.Row
			var after []any
			for page := 0; ; page++ {
				if page > len(all)+2 {
					t.Fatalf("scan does not end")
				}
				rows, err := c.Scan(ctx, connector.ScanRequest{
					Table: "dw_scan", OrderBy: []string{"tenant", "id"}, After: after, Equal: tc.equal, Limit: tc.limit,
				})
				if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				if tc.limit > 0 && len(rows) > tc.limit {
					t.Fatalf("Scan returned %d rows, more than Limit %d", len(rows), tc.limit)
				}
				got = append(got, rows...)
				if len(rows) == 0 || tc.limit == 0 {
					break
				}
				last := rows[len(rows)-1]
				after = []any{last["tenant"], last["id"]}
			}
			if len(got) != len(want) {
				t.Fatalf("Scan returned %d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if d := diffRow(kinds, want[i], got[i]); d != "" {
					t.Errorf("row %d: %s", i, d)
				}
			}
			n, err := c.Count(ctx, "dw_scan", tc.equal)
			if err != nil {
				t.Fatalf("Count: %v", err)
			}
			if n != int64(len(want)) {
				t.Errorf("Count = %d, want %d", n, len(want))
			}
		})
	}

	t.Run("columns subset", func(t *testing.T) {
		rows, err := c.Scan(ctx, connector.ScanRequest{
			Table: "dw_scan", Columns: []string{"id", "val"}, OrderBy: []string{"tenant", "id"},
			After: []any{int64(2), int64(3)}, Limit: 2,
		})
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		want := []change.Row{{"id": int64(5), "val": "v2.5"}, {"id": int64(9), "val": "v2.9"}}
		if len(rows) != len(want) {
			t.Fatalf("Scan returned %d rows, want %d: %v", len(rows), len(want), rows)
		}
		for i := range want {
			if d := diffRow(kinds, want[i], rows[i]); d != "" {
				t.Errorf("row %d: %s", i, d)
			}
		}
	})

	t.Run("missing table", func(t *testing.T) {
		if _, err := c.Scan(ctx, connector.ScanRequest{Table: "dw_missing", OrderBy: []string{"id"}}); err == nil {
			t.Errorf("Scan of a missing table succeeded")
		}
	})
}

package mapping

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func TestTranslateDemo(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, demoConfig(), "customers", erpTables(), crmTables())
	cases := []struct {
		name    string
		from    Side
		row     change.Row
		values  change.Row
		lookups []PendingLookup
	}{
		{
			name: "left to right",
			from: Left,
			row: change.Row{"dataareaid": "USMF", "accountnum": "C-1", "name": `Ann "Ö" O'Neil`, "currency": "USD", "custgroup": nil,
				"custtype": "Customer", "creditlimit": dec("1500.5000"), "invoiceaccount": nil, "blocked": int64(0)},
			values: change.Row{"accountnumber": "C-1", "name": `Ann "Ö" O'Neil`, "customertypecode": int64(1),
				"description": `Ann "Ö" O'Neil (C-1)`, "creditlimit": dec("1500.5000")},
			lookups: []PendingLookup{{0, []any{"USMF"}}, {1, []any{"USD"}}, {2, []any{"USMF", nil}}},
		},
		{
			name: "right to left with NULLs and a default",
			from: Right,
			row: change.Row{"accountid": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "msdyn_company": "11111111-1111-1111-1111-111111111111",
				"accountnumber": "C-2", "name": nil, "customertypecode": int64(2), "creditlimit": nil, "description": "ignored",
				"transactioncurrencyid": nil, "msdyn_invoiceaccount": nil},
			values:  change.Row{"accountnum": "C-2", "name": nil, "custtype": "Vendor", "creditlimit": dec("0")},
			lookups: []PendingLookup{{0, []any{"11111111-1111-1111-1111-111111111111"}}, {1, []any{nil}}, {2, []any{"11111111-1111-1111-1111-111111111111", nil}}},
		},
		{
			name: "value map compares decimals numerically and NULL stays NULL",
			from: Right,
			row: change.Row{"msdyn_company": "c", "accountnumber": "C-3", "name": nil, "customertypecode": dec("1.000"), "creditlimit": float64(12.5),
				"transactioncurrencyid": nil, "msdyn_invoiceaccount": nil},
			values:  change.Row{"accountnum": "C-3", "name": nil, "custtype": "Customer", "creditlimit": dec("12.5")},
			lookups: []PendingLookup{{0, []any{"c"}}, {1, []any{nil}}, {2, []any{"c", nil}}},
		},
		{
			name: "long unicode text passes through unchanged",
			from: Left,
			row: change.Row{"dataareaid": "X", "accountnum": "Ω-1", "name": strings.Repeat("日本語 \"q\" 'x' \\ \t\n", 2000), "custtype": nil, "creditlimit": int64(7),
				"currency": nil, "invoiceaccount": nil},
			values:  change.Row{"accountnumber": "Ω-1", "name": strings.Repeat("日本語 \"q\" 'x' \\ \t\n", 2000), "customertypecode": nil, "description": strings.Repeat("日本語 \"q\" 'x' \\ \t\n", 2000) + " (Ω-1)", "creditlimit": dec("7")},
			lookups: []PendingLookup{{0, []any{"X"}}, {1, []any{nil}}, {2, []any{"X", nil}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.Translate(tc.from, tc.row)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Values, tc.values) {
				t.Errorf("values =\n%#v\nwant\n%#v", got.Values, tc.values)
			}
			if !reflect.DeepEqual(got.Lookups, tc.lookups) {
				t.Errorf("lookups = %#v, want %#v", got.Lookups, tc.lookups)
			}
		})
	}
}

func TestTranslateErrors(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, demoConfig(), "customers", erpTables(), crmTables())
	cases := []struct {
		name string
		from Side
		row  change.Row
		says string
	}{
		{"value without value map entry", Left, change.Row{"accountnum": "A", "custtype": "Partner"}, `"Partner" has no entry in value_map`},
		{"inverse value without entry", Right, change.Row{"accountnumber": "A", "customertypecode": int64(9)}, `"9" has no entry`},
		{"expression on NULL", Left, change.Row{"accountnum": "A", "name": nil}, "expression"},
		{"value that does not convert", Right, change.Row{"accountnumber": "A", "creditlimit": "lots"}, "cannot convert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := m.Translate(tc.from, tc.row)
			if err == nil {
				t.Fatal("no error")
			}
			if problem.CodeOf(err) != problem.TransformFailed {
				t.Errorf("code = %q, want DW3003: %v", problem.CodeOf(err), err)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "customers") {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func TestTranslateTransforms(t *testing.T) {
	t.Parallel()
	cfg := demoConfig()
	cm := &cfg.Maps[2]
	cm.Columns = append(cm.Columns,
		// 5: both-way expressions between bool and float.
		config.ColumnMap{Left: "flag", Right: "rating", LeftToRight: "(flag ?? false) ? 5.0 : 1.0", RightToLeft: "(rating ?? 0) >= 3"},
		// 6: a value map with a default for values it lacks.
		config.ColumnMap{Left: "custgroup", Right: "payload", Default: "{}", HasDefault: true,
			ValueMapPairs: [][2]string{{"10", `{"g":"retail"}`}, {"20", `{"g":"wholesale"}`}}},
		// 7: date to time, time to date.
		config.ColumnMap{Left: "opened", Right: "modifiedon"},
		// 8: decimal arithmetic in an expression, one way.
		config.ColumnMap{Left: "blocked", Right: "photo", Direction: config.LeftToRight, LeftToRight: `string(creditlimit * 2)`},
	)
	m := mustCompile(t, cfg, "customers", erpTables(), crmTables())
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		from Side
		row  change.Row
		want change.Row // subset of the values
	}{
		{"expression left to right", Left, change.Row{"name": "a", "accountnum": "b", "flag": true, "creditlimit": dec("10.25")},
			change.Row{"rating": float64(5), "photo": []byte("20.5")}},
		{"expression right to left", Right, change.Row{"rating": float64(4.5)}, change.Row{"flag": true}},
		{"expression right to left false", Right, change.Row{"rating": int64(1)}, change.Row{"flag": false}},
		{"expression on NULL flag", Left, change.Row{"name": "a", "accountnum": "b", "flag": nil, "creditlimit": int64(1)}, change.Row{"rating": float64(1)}},
		{"value map with default", Left, change.Row{"name": "a", "accountnum": "b", "custgroup": "30", "creditlimit": int64(0)}, change.Row{"payload": "{}"}},
		{"value map hit", Left, change.Row{"name": "a", "accountnum": "b", "custgroup": "20", "creditlimit": int64(0)}, change.Row{"payload": `{"g":"wholesale"}`}},
		{"value map NULL gets the default", Left, change.Row{"name": "a", "accountnum": "b", "custgroup": nil, "creditlimit": int64(0)}, change.Row{"payload": "{}"}},
		{"inverse value map", Right, change.Row{"payload": `{"g":"retail"}`}, change.Row{"custgroup": "10"}},
		{"date to time", Left, change.Row{"name": "a", "accountnum": "b", "opened": day, "creditlimit": int64(0)}, change.Row{"modifiedon": day}},
		{"time to date", Right, change.Row{"modifiedon": day.Add(13 * time.Hour)}, change.Row{"opened": day}},
		{"text time to date", Right, change.Row{"modifiedon": "2024-02-29 23:59:59"}, change.Row{"opened": day}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.Translate(tc.from, tc.row)
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range tc.want {
				if g, ok := got.Values[k]; !ok || !reflect.DeepEqual(g, w) {
					t.Errorf("%s = %#v, want %#v", k, g, w)
				}
			}
		})
	}

	// NULL inside an expression: `??` supplies a fallback.
	cfg = demoConfig()
	cfg.Maps[2].Columns[3].LeftToRight = `(name ?? "?") + " (" + accountnum + ")"`
	m2 := mustCompile(t, cfg, "customers", erpTables(), crmTables())
	got, err := m2.Translate(Left, change.Row{"accountnum": "A-1", "name": nil, "custtype": "Vendor", "creditlimit": int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Values["description"] != "? (A-1)" || got.Values["customertypecode"] != int64(2) {
		t.Errorf("values = %v", got.Values)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	cfg := demoConfig()
	cfg.Maps[2].Filter.Right = `customertypecode in [1, 2] && creditlimit > 100`
	m := mustCompile(t, cfg, "customers", erpTables(), crmTables())
	cases := []struct {
		name string
		from Side
		row  change.Row
		want bool
		fail bool
	}{
		{"not blocked", Left, change.Row{"blocked": int64(0)}, true, false},
		{"blocked", Left, change.Row{"blocked": int64(1)}, false, false},
		{"blocked NULL", Left, change.Row{"blocked": nil}, true, false},
		{"decimal compared as number", Right, change.Row{"customertypecode": int64(1), "creditlimit": dec("100.01")}, true, false},
		{"decimal below", Right, change.Row{"customertypecode": int64(2), "creditlimit": dec("99.99")}, false, false},
		{"not in list", Right, change.Row{"customertypecode": int64(3), "creditlimit": dec("500")}, false, false},
		{"NULL in arithmetic comparison", Right, change.Row{"customertypecode": int64(1), "creditlimit": nil}, false, true},
	}
	for _, tc := range cases {
		got, err := m.Match(tc.from, tc.row)
		if tc.fail {
			if problem.CodeOf(err) != problem.TransformFailed {
				t.Errorf("%s: err = %v, want DW3003", tc.name, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: Match = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	// No filter: every row.
	m = mustCompile(t, demoConfig(), "companies", erpTables(), crmTables())
	if ok, err := m.Match(Left, change.Row{}); !ok || err != nil {
		t.Errorf("no filter: %v, %v", ok, err)
	}
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, demoConfig(), "customers", erpTables(), crmTables())
	cases := []struct {
		name string
		s    Side
		row  change.Row
		want []any
	}{
		{"left", Left, change.Row{"dataareaid": "USMF", "accountnum": "C-1", "name": "x"}, []any{"USMF", "C-1"}},
		{"right", Right, change.Row{"accountnumber": "C-1", "msdyn_company": "u"}, []any{"u", "C-1"}},
		{"NULL", Left, change.Row{"dataareaid": "USMF", "accountnum": nil}, nil},
		{"missing", Right, change.Row{"accountnumber": "C-1"}, nil},
	}
	for _, tc := range cases {
		got, err := m.KeyOf(tc.s, tc.row)
		if tc.want == nil {
			if problem.CodeOf(err) != problem.KeyMissing {
				t.Errorf("%s: err = %v, want DW3004", tc.name, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: KeyOf = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestTranslatePartialRow: a column the row does not carry (an unchanged
// TOAST value, a lookup's key-only row) is unknown, so the pairs reading it
// are left out instead of writing NULL or failing.
func TestTranslatePartialRow(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, demoConfig(), "customers", erpTables(), crmTables())
	got, err := m.Translate(Left, change.Row{"dataareaid": "USMF", "accountnum": "C-1", "custtype": nil})
	if err != nil {
		t.Fatal(err)
	}
	want := change.Row{"accountnumber": "C-1", "customertypecode": nil}
	if !reflect.DeepEqual(got.Values, want) {
		t.Errorf("values = %#v, want %#v", got.Values, want)
	}
	if !reflect.DeepEqual(got.Lookups, []PendingLookup{{0, []any{"USMF"}}}) {
		t.Errorf("lookups = %#v", got.Lookups)
	}
	// With name present the expression runs.
	got, err = m.Translate(Left, change.Row{"accountnum": "C-1", "name": "N"})
	if err != nil || got.Values["description"] != "N (C-1)" {
		t.Errorf("description = %#v, %v", got.Values["description"], err)
	}
}

func TestValueMapWithoutPairsAndMaster(t *testing.T) {
	t.Parallel()
	cfg := demoConfig()
	cfg.Maps[2].Columns[2].ValueMapPairs = nil // a Config built by hand
	m := mustCompile(t, cfg, "customers", erpTables(), crmTables())
	r, err := m.Translate(Right, change.Row{"customertypecode": int64(2)})
	if err != nil || r.Values["custtype"] != "Vendor" {
		t.Errorf("inverse value_map from ValueMap: %v, %v", r.Values, err)
	}
	l, err := m.Translate(Left, change.Row{"custtype": "Customer"})
	if err != nil || l.Values["customertypecode"] != int64(1) {
		t.Errorf("value_map from ValueMap: %v, %v", l.Values, err)
	}
	for master, want := range map[string]Side{"": Right, "right": Right, "left": Left, "erp": Left, "crm": Right} {
		cfg.Maps[2].Master = master
		if got := mustCompile(t, cfg, "customers", erpTables(), crmTables()).Master; got != want {
			t.Errorf("master %q = %s, want %s", master, got, want)
		}
	}
}

package mapping

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

func TestCompileDemo(t *testing.T) {
	t.Parallel()
	cfg := demoConfig()
	all, issues := CompileAll(cfg, tablesOf(erpTables(), crmTables()))
	if len(issues) > 0 {
		t.Fatalf("issues: %v", issues)
	}
	if len(all) != 3 {
		t.Fatalf("compiled %d maps, want 3", len(all))
	}
	m := all["customers"]
	if m.Name != "customers" || m.Master != Right || m.Table(Left) != "custtable" || m.Table(Right) != "account" {
		t.Fatalf("map header: %+v", m)
	}
	if !m.Flows(Left) || !m.Flows(Right) {
		t.Fatal("a map without direction flows both ways")
	}
	if got := m.KeyColumns(Left); !reflect.DeepEqual(got, []string{"dataareaid", "accountnum"}) {
		t.Errorf("left key = %v", got)
	}
	if got := m.KeyColumns(Right); !reflect.DeepEqual(got, []string{"msdyn_company", "accountnumber"}) {
		t.Errorf("right key = %v", got)
	}
	if m.CompanyColumn(Left) != "dataareaid" || m.CompanyColumn(Right) != "msdyn_company" {
		t.Errorf("company columns = %q, %q", m.CompanyColumn(Left), m.CompanyColumn(Right))
	}
	if all["companies"].CompanyColumn(Left) != "" {
		t.Error("a map without company key has a company column")
	}

	wantLeft := []Pair{
		{0, "accountnum", "accountnumber", false, []string{"accountnumber"}},
		{1, "name", "name", false, []string{"name"}},
		{2, "custtype", "customertypecode", false, []string{"customertypecode"}},
		{3, "", "description", false, []string{"description"}},
		{4, "creditlimit", "creditlimit", false, []string{"creditlimit"}},
		{5, "dataareaid", "msdyn_company", true, []string{"msdyn_company"}},
		{6, "currency", "transactioncurrencyid", true, []string{"transactioncurrencyid"}},
		{7, "invoiceaccount", "msdyn_invoiceaccount", true, []string{"msdyn_invoiceaccount"}},
	}
	if got := m.Pairs(Left); !reflect.DeepEqual(got, wantLeft) {
		t.Errorf("Pairs(Left) =\n%v\nwant\n%v", got, wantLeft)
	}
	wantRight := []Pair{
		{0, "accountnumber", "accountnum", false, []string{"accountnum"}},
		{1, "name", "name", false, []string{"name"}},
		{2, "customertypecode", "custtype", false, []string{"custtype"}},
		{4, "creditlimit", "creditlimit", false, []string{"creditlimit"}},
		{5, "msdyn_company", "dataareaid", true, []string{"dataareaid"}},
		{6, "transactioncurrencyid", "currency", true, []string{"currency"}},
		{7, "msdyn_invoiceaccount", "invoiceaccount", true, []string{"invoiceaccount"}},
	}
	if got := m.Pairs(Right); !reflect.DeepEqual(got, wantRight) {
		t.Errorf("Pairs(Right) =\n%v\nwant\n%v", got, wantRight)
	}
	if got, want := m.SourceColumns(Left), []string{"dataareaid", "accountnum", "name", "custtype", "creditlimit", "currency", "invoiceaccount", "blocked"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SourceColumns(Left) = %v, want %v", got, want)
	}
	if got, want := m.SourceColumns(Right), []string{"msdyn_company", "accountnumber", "name", "customertypecode", "creditlimit", "transactioncurrencyid", "msdyn_invoiceaccount"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SourceColumns(Right) = %v, want %v", got, want)
	}

	ls := m.Lookups()
	if len(ls) != 3 || ls[0].LeftRef.One() != "dataareaid" || ls[0].RightRef.One() != "cdm_companyid" ||
		ls[1].LeftRef.One() != "currencycode" || ls[1].RightRef.One() != "isocurrencycode" ||
		ls[2].LeftRef.One() != "accountnum" || ls[2].RightRef.One() != "accountid" || ls[0].Direction != config.Both {
		t.Errorf("resolved lookups = %+v", ls)
	}
	if len(cfg.Maps[2].Lookups[1].LeftRef) != 0 {
		t.Error("Compile changed the configuration")
	}
	specs := []struct {
		from Side
		i    int
		want LookupSpec
	}{
		{Left, 0, LookupSpec{Map: "companies", SourceColumns: []string{"dataareaid"}, SourceRefs: []string{"dataareaid"}, TargetColumns: []string{"msdyn_company"},
			TargetRefs: []string{"cdm_companyid"}, SourceTable: "companies", TargetTable: "cdm_company"}},
		{Right, 0, LookupSpec{Map: "companies", SourceColumns: []string{"msdyn_company"}, SourceRefs: []string{"cdm_companyid"}, TargetColumns: []string{"dataareaid"},
			TargetRefs: []string{"dataareaid"}, SourceTable: "cdm_company", TargetTable: "companies"}},
		{Left, 1, LookupSpec{Map: "currencies", SourceColumns: []string{"currency"}, SourceRefs: []string{"currencycode"}, TargetColumns: []string{"transactioncurrencyid"},
			TargetRefs: []string{"isocurrencycode"}, SourceTable: "currencies", TargetTable: "transactioncurrency"}},
		// A self-reference within the row's company: the company column
		// is matched first, and only the reference itself is written.
		{Right, 2, LookupSpec{Map: "customers", SourceColumns: []string{"msdyn_company", "msdyn_invoiceaccount"}, SourceRefs: []string{"msdyn_company", "accountid"},
			TargetColumns: []string{"invoiceaccount"}, TargetRefs: []string{"accountnum"}, SourceTable: "account", TargetTable: "custtable",
			SelfReference: true, Scoped: true, Scope: 1}},
	}
	for _, s := range specs {
		if got := m.Lookup(s.from, s.i); !reflect.DeepEqual(got, s.want) {
			t.Errorf("Lookup(%s, %d) =\n%+v\nwant\n%+v", s.from, s.i, got, s.want)
		}
	}
}

func TestCompileDirectionsAndImplicitKeys(t *testing.T) {
	t.Parallel()
	cfg := demoConfig()
	// The key is not listed among the columns: it is copied anyway.
	cfg.Maps[0].Columns = cfg.Maps[0].Columns[1:]
	cfg.Maps[0].Direction = config.LeftToRight
	cfg.Maps[0].Master = "erp"
	m := mustCompile(t, cfg, "companies", erpTables(), crmTables())
	if m.Flows(Right) || !m.Flows(Left) || m.Master != Left {
		t.Fatalf("flows right=%v left=%v master=%v", m.Flows(Right), m.Flows(Left), m.Master)
	}
	if got := m.Pairs(Right); len(got) != 0 {
		t.Errorf("Pairs(Right) of a left_to_right map = %v", got)
	}
	want := []Pair{{0, "name", "cdm_name", false, []string{"cdm_name"}}, {1, "dataareaid", "cdm_companycode", false, []string{"cdm_companycode"}}}
	if got := m.Pairs(Left); !reflect.DeepEqual(got, want) {
		t.Errorf("Pairs(Left) = %v, want %v", got, want)
	}
	tr, err := m.Translate(Left, map[string]any{"dataareaid": "USMF", "name": "Contoso"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tr.Values, map[string]any{"cdm_companycode": "USMF", "cdm_name": "Contoso"}) && len(tr.Values) != 2 {
		t.Errorf("values = %v", tr.Values)
	}
	if tr.Values["cdm_companycode"] != "USMF" {
		t.Errorf("key not copied: %v", tr.Values)
	}

	// A one-way map never inserts into its source side, so a mandatory
	// column there needs no mapping.
	cfg = demoConfig()
	cfg.Maps[2].Direction = config.LeftToRight
	left := erpTables()
	ct := left["custtable"]
	ct.Columns = append(ct.Columns, col("mandatory", kInt, "nn"))
	left["custtable"] = ct
	mustCompile(t, cfg, "customers", left, crmTables())
	cfg.Maps[2].Direction = config.RightToLeft
	cfg.Maps[2].Columns[3].Direction = config.RightToLeft
	cfg.Maps[2].Columns[3].RightToLeft, cfg.Maps[2].Columns[3].LeftToRight = cfg.Maps[2].Columns[3].LeftToRight, ""
	_, issues := Compile(cfg, cfg.Maps[2], tablesOf(left, crmTables()))
	if len(issues) == 0 || issues[len(issues)-1].Code != problem.MandatoryUnmapped {
		t.Errorf("right_to_left map into a table with an unmapped mandatory column: %v", issues)
	}

	// A column with only a right side flows left to right in a both-way
	// map; with only a left side, right to left.
	cfg = demoConfig()
	cfg.Maps[1].Columns = append(cfg.Maps[1].Columns, config.ColumnMap{Left: "symbol", Default: "$", HasDefault: true})
	cfg.Maps[1].Columns[2] = config.ColumnMap{Right: "currencysymbol", Default: "€", HasDefault: true}
	m = mustCompile(t, cfg, "currencies", erpTables(), crmTables())
	l, _ := m.Translate(Left, map[string]any{"currencycode": "EUR", "name": "Euro"})
	r, _ := m.Translate(Right, map[string]any{"isocurrencycode": "EUR", "currencyname": "Euro"})
	if l.Values["currencysymbol"] != "€" || r.Values["symbol"] != "$" {
		t.Errorf("default-only pairs: %v / %v", l.Values, r.Values)
	}
	if _, ok := l.Values["symbol"]; ok {
		t.Error("right-only column written on the left")
	}
}

func TestIssueString(t *testing.T) {
	t.Parallel()
	is := Issue{Code: problem.UnknownColumn, Path: "maps[2].columns[1].right", Pos: config.Pos{Line: 34, Column: 9}, Message: "column crm.account.foo does not exist; fix it"}
	if got, want := is.String(), "maps[2].columns[1].right (line 34, col 9): DW1024 column crm.account.foo does not exist; fix it"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	is.Pos = config.Pos{}
	if got, want := is.String(), "maps[2].columns[1].right: DW1024 column crm.account.foo does not exist; fix it"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestCompileProblems breaks the demo one way at a time and expects the
// customers map to fail with exactly the code, at the path, with words
// that say what to do.
func TestCompileProblems(t *testing.T) {
	t.Parallel()
	type edit func(cfg *config.Config, left, right map[string]connector.Table)
	cases := []struct {
		name string
		edit edit
		code problem.Code
		path string
		line int
		says []string
	}{
		{"left table missing", func(c *config.Config, l, r map[string]connector.Table) { delete(l, "custtable") },
			problem.UnknownTable, "maps[2].left", 36, []string{"erp.custtable does not exist"}},
		{"right table missing", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Right = "acount" },
			problem.UnknownTable, "maps[2].right", 36, []string{"crm.acount"}},
		{"key column missing", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Key[1].Left = config.Columns{"accountno"}
		},
			problem.UnknownColumn, "maps[2].key[1].left", 43, []string{"erp.custtable.accountno does not exist"}},
		{"mapped column missing", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Columns[1].Right = "Name" },
			problem.UnknownColumn, "maps[2].columns[1].right", 46, []string{"crm.account.Name", "did you mean name"}},
		{"lookup column missing", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Lookups[1].Right = config.Columns{"currencyid"}
		},
			problem.UnknownColumn, "maps[2].lookups[1].right", 52, []string{"crm.account.currencyid"}},
		{"lookup ref missing", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Lookups[0].RightRef = config.Columns{"companyid"}
		},
			problem.UnknownColumn, "maps[2].lookups[0].right_ref", 51, []string{"crm.cdm_company.companyid"}},
		{"lookup related table missing", func(c *config.Config, l, r map[string]connector.Table) { delete(r, "transactioncurrency") },
			problem.UnknownTable, "maps[2].lookups[1].map", 52, []string{"crm.transactioncurrency", "map currencies"}},
		{"lookup map unknown", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Lookups[1].Map = "currency" },
			problem.LookupUncovered, "maps[2].lookups[1].map", 52, []string{`"currency"`, "add that map"}},
		{"filter variable unknown", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Filter.Left = "blockd != 1" },
			problem.UnknownColumn, "maps[2].filter.left", 55, []string{"blockd", "erp.custtable"}},
		{"expression variable unknown", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Columns[3].LeftToRight = `name + accountnumber`
		}, problem.UnknownColumn, "maps[2].columns[3].left_to_right", 48, []string{"accountnumber", "not a column of erp.custtable"}},
		{"key not unique", func(c *config.Config, l, r map[string]connector.Table) {
			a := r["account"]
			a.Unique = a.Unique[:1]
			r["account"] = a
		}, problem.KeyNotUnique, "maps[2].key", 42, []string{"crm.account", "add a unique index on (msdyn_company, accountnumber) or choose another key"}},
		{"key is only part of a unique index", func(c *config.Config, l, r map[string]connector.Table) {
			ct := l["custtable"]
			ct.Unique = [][]string{{"dataareaid", "accountnum", "name"}}
			l["custtable"] = ct
		}, problem.KeyNotUnique, "maps[2].key", 42, []string{"erp.custtable has no unique index on (dataareaid, accountnum)"}},
		{"mandatory column unmapped", func(c *config.Config, l, r map[string]connector.Table) {
			a := r["account"]
			a.Columns = append(a.Columns, col("statecode", kInt, "nn"))
			r["account"] = a
		}, problem.MandatoryUnmapped, "maps[2].columns", 36, []string{"crm.account.statecode", "map it, give it a default, or add a database default"}},
		{"mandatory column unmapped on the left", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Columns = c.Maps[2].Columns[:1] },
			problem.MandatoryUnmapped, "maps[2].columns", 36, []string{"erp.custtable.name"}},
		{"expression syntax", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Columns[3].LeftToRight = `name + (` },
			problem.ExprInvalid, "maps[2].columns[3].left_to_right", 48, []string{"does not compile"}},
		{"expression type error", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Columns[3].LeftToRight = `name * 2` },
			problem.ExprInvalid, "maps[2].columns[3].left_to_right", 48, []string{"name * 2"}},
		{"filter not boolean", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Filter.Left = "blocked + 1" },
			problem.ExprInvalid, "maps[2].filter.left", 55, []string{"not a valid condition", "expected bool"}},
		{"kinds bool and time", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Columns = append(c.Maps[2].Columns, config.ColumnMap{Left: "flag", Right: "modifiedon", Pos: config.Pos{Line: 50, Column: 9}})
		}, problem.TypeMismatch, "maps[2].columns[5]", 50, []string{"erp.custtable.flag (bool)", "crm.account.modifiedon (time)", "add a value_map or an expression"}},
		{"kinds date and float", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Columns = append(c.Maps[2].Columns, config.ColumnMap{Left: "opened", Right: "rating"})
		}, problem.TypeMismatch, "maps[2].columns[5]", 36, []string{"opened", "rating"}},
		{"kinds int and bytes one way without expression", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Columns = append(c.Maps[2].Columns, config.ColumnMap{Left: "blocked", Right: "photo", Direction: config.RightToLeft})
		}, problem.TypeMismatch, "maps[2].columns[5]", 36, []string{"blocked", "photo"}},
		{"kinds json and int", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Columns = append(c.Maps[2].Columns, config.ColumnMap{Left: "blocked", Right: "payload"})
		}, problem.TypeMismatch, "maps[2].columns[5]", 36, []string{"payload"}},
		{"lookup target kind", func(c *config.Config, l, r map[string]connector.Table) {
			l["custtable"].Columns[3] = col("currency", kTime)
			l["currencies"].Columns[0] = col("currencycode", kBool, "nn")
		}, problem.TypeMismatch, "maps[2].lookups[1].left", 52, []string{"erp.custtable.currency (time)", "erp.currencies.currencycode (bool)", "left_ref"}},
		{"lookup target ref kind", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Lookups[0].RightRef = config.Columns{"cdm_flag"}
			cc := r["cdm_company"]
			cc.Columns = append(cc.Columns, col("cdm_flag", kBool))
			r["cdm_company"] = cc
		}, problem.TypeMismatch, "maps[2].lookups[0].right", 51, []string{"crm.account.msdyn_company (uuid)", "crm.cdm_company.cdm_flag (bool)"}},
		{"default does not fit", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Columns[4].Default = "lots" },
			problem.TypeMismatch, "maps[2].columns[4].default", 49, []string{`default "lots"`, "decimal"}},
		{"value map value does not fit", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Columns[2].ValueMapPairs = [][2]string{{"Customer", "1"}, {"Vendor", "V"}}
		}, problem.TypeMismatch, "maps[2].columns[2].value_map", 47, []string{`"V"`, "crm.account.customertypecode"}},
		{"no key", func(c *config.Config, l, r map[string]connector.Table) { c.Maps[2].Key = nil },
			problem.ConfigInvalid, "maps[2].key", 36, []string{"no key"}},
		{"lookup ref ambiguous", func(c *config.Config, l, r map[string]connector.Table) {
			c.Maps[2].Key[0].Company = false
		}, problem.ConfigInvalid, "maps[2].lookups[2].left_ref", 53, []string{"set left_ref"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := demoConfig()
			left, right := erpTables(), crmTables()
			tc.edit(cfg, left, right)
			m, issues := Compile(cfg, cfg.Maps[2], tablesOf(left, right))
			if m != nil {
				t.Error("a map with problems compiled")
			}
			if len(issues) != 1 {
				t.Fatalf("got %d issues, want 1: %v", len(issues), issues)
			}
			is := issues[0]
			if is.Code != tc.code || is.Path != tc.path || is.Map != "customers" || is.Pos.Line != tc.line {
				t.Errorf("issue = %s (map %s), want %s at %s line %d", is, is.Map, tc.code, tc.path, tc.line)
			}
			for _, w := range tc.says {
				if !strings.Contains(is.Message, w) {
					t.Errorf("message %q does not say %q", is.Message, w)
				}
			}
			// The rest of the configuration still compiles.
			all, _ := CompileAll(cfg, tablesOf(left, right))
			if _, ok := all["customers"]; ok {
				t.Error("CompileAll kept a map with problems")
			}
		})
	}
}

func TestCompileBridges(t *testing.T) {
	t.Parallel()
	// A value map or an expression bridges kinds that cannot carry each
	// other directly.
	cases := []struct {
		name string
		col  config.ColumnMap
	}{
		{"value map bool to time", config.ColumnMap{Left: "flag", Right: "modifiedon", ValueMapPairs: [][2]string{{"true", "2020-01-01T00:00:00Z"}}}},
		{"expressions both ways", config.ColumnMap{Left: "flag", Right: "rating", LeftToRight: "flag ? 1.0 : 0.0", RightToLeft: "rating > 0"}},
		{"one-way expression", config.ColumnMap{Left: "opened", Right: "rating", Direction: config.LeftToRight, LeftToRight: "opened.Year() * 1.0"}},
		{"text carries anything", config.ColumnMap{Left: "name", Right: "payload"}},
		{"uuid and text", config.ColumnMap{Left: "invoiceaccount", Right: "accountid"}},
		{"date and time", config.ColumnMap{Left: "opened", Right: "modifiedon"}},
		{"int and decimal and bool", config.ColumnMap{Left: "flag", Right: "customertypecode"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := demoConfig()
			cfg.Maps[2].Columns = append(cfg.Maps[2].Columns, tc.col)
			mustCompile(t, cfg, "customers", erpTables(), crmTables())
		})
	}
}

func TestCompileCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := demoConfig()
	cfg.Maps[2].Columns[0].Left = "nope"
	cfg.Maps[2].Columns[1].Right = "nope"
	cfg.Maps[2].Filter.Left = "blocked +"
	_, issues := Compile(cfg, cfg.Maps[2], tablesOf(erpTables(), crmTables()))
	var codes []string
	for _, is := range issues {
		codes = append(codes, string(is.Code)+" "+is.Path)
	}
	want := []string{"DW1024 maps[2].columns[0].left", "DW1024 maps[2].columns[1].right", "DW1012 maps[2].filter.left"}
	if !reflect.DeepEqual(codes, want) {
		t.Errorf("issues = %v, want %v", codes, want)
	}
}

func TestCompatible(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b connector.Kind
		want bool
	}{
		{kInt, kDec, true}, {kFlt, kDec, true}, {kInt, kFlt, true},
		{kText, kBool, true}, {kText, kByte, true}, {kJSON, kText, true}, {connector.KindOther, kTime, true},
		{kUUID, kText, true}, {kUUID, kByte, true}, {kDate, kTime, true}, {kBool, kInt, true},
		{kBool, kTime, false}, {kByte, kInt, false}, {kTime, kFlt, false}, {kJSON, kInt, false},
		{kBool, kFlt, false}, {kUUID, kInt, false}, {kDate, kBool, false},
	}
	for _, tc := range cases {
		if got := compatible(tc.a, tc.b); got != tc.want {
			t.Errorf("compatible(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := compatible(tc.b, tc.a); got != tc.want {
			t.Errorf("compatible(%s, %s) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

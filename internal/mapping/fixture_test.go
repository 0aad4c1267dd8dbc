package mapping

import (
	"strings"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// Hand-built table descriptions of the demo's ERP (left) and CRM (right):
// real metadata as a connector's Describe returns it.

// col builds a column; flags: "nn" NOT NULL, "def" has a database default.
func col(name string, k connector.Kind, flags ...string) connector.Column {
	c := connector.Column{Name: name, Type: string(k), Kind: k, Nullable: true}
	for _, f := range flags {
		switch f {
		case "nn":
			c.Nullable = false
		case "def":
			c.HasDefault = true
		}
	}
	return c
}

func table(name string, pk []string, unique [][]string, cols ...connector.Column) connector.Table {
	t := connector.Table{Name: name, Columns: cols, PrimaryKey: pk}
	if len(pk) > 0 {
		t.Unique = append(t.Unique, pk)
	}
	t.Unique = append(t.Unique, unique...)
	return t
}

const (
	kInt  = connector.KindInt
	kFlt  = connector.KindFloat
	kDec  = connector.KindDecimal
	kText = connector.KindText
	kBool = connector.KindBool
	kByte = connector.KindBytes
	kTime = connector.KindTime
	kDate = connector.KindDate
	kJSON = connector.KindJSON
	kUUID = connector.KindUUID
)

func erpTables() map[string]connector.Table {
	return map[string]connector.Table{
		"companies": table("companies", []string{"dataareaid"}, nil,
			col("dataareaid", kText, "nn"), col("name", kText, "nn")),
		"currencies": table("currencies", []string{"currencycode"}, nil,
			col("currencycode", kText, "nn"), col("name", kText, "nn"), col("symbol", kText)),
		"custtable": table("custtable", []string{"dataareaid", "accountnum"}, nil,
			col("dataareaid", kText, "nn"), col("accountnum", kText, "nn"), col("name", kText, "nn"),
			col("currency", kText), col("custgroup", kText), col("custtype", kText, "nn", "def"),
			col("creditlimit", kDec, "nn", "def"), col("invoiceaccount", kText), col("blocked", kInt, "nn", "def"),
			col("opened", kDate), col("flag", kBool)),
	}
}

func crmTables() map[string]connector.Table {
	return map[string]connector.Table{
		"cdm_company": table("cdm_company", []string{"cdm_companyid"}, [][]string{{"cdm_companycode"}},
			col("cdm_companyid", kUUID, "nn", "def"), col("cdm_companycode", kText, "nn"), col("cdm_name", kText)),
		"transactioncurrency": table("transactioncurrency", []string{"transactioncurrencyid"}, [][]string{{"isocurrencycode"}},
			col("transactioncurrencyid", kUUID, "nn", "def"), col("isocurrencycode", kText, "nn"),
			col("currencyname", kText), col("currencysymbol", kText)),
		"account": table("account", []string{"accountid"}, [][]string{{"msdyn_company", "accountnumber"}},
			col("accountid", kUUID, "nn", "def"), col("msdyn_company", kUUID, "nn"), col("accountnumber", kText, "nn"),
			col("name", kText), col("transactioncurrencyid", kUUID), col("customertypecode", kInt),
			col("creditlimit", kDec), col("msdyn_invoiceaccount", kUUID), col("description", kText),
			col("modifiedon", kTime), col("payload", kJSON), col("photo", kByte), col("rating", kFlt)),
	}
}

// tablesOf serves described tables; edit lets a test change them.
func tablesOf(left, right map[string]connector.Table) Tables {
	return func(s Side, name string) (connector.Table, bool) {
		src := left
		if s == Right {
			src = right
		}
		t, ok := src[name]
		return t, ok
	}
}

func demoConfig() *config.Config {
	return &config.Config{
		Link: config.Link{Name: "erp-crm", Left: config.Side{Name: "erp", Driver: "sqlite"}, Right: config.Side{Name: "crm", Driver: "sqlite"}},
		Maps: []config.Map{
			{
				Name: "companies", Left: "companies", Right: "cdm_company", Pos: config.Pos{Line: 12, Column: 5},
				Key: []config.KeyColumn{{Left: config.Columns{"dataareaid"}, Right: config.Columns{"cdm_companycode"}, Pos: config.Pos{Line: 15, Column: 11}}},
				Columns: []config.ColumnMap{
					{Left: "dataareaid", Right: "cdm_companycode"},
					{Left: "name", Right: "cdm_name", Pos: config.Pos{Line: 18, Column: 9}},
				},
			},
			{
				Name: "currencies", Left: "currencies", Right: "transactioncurrency", Pos: config.Pos{Line: 19, Column: 5},
				Key: []config.KeyColumn{{Left: config.Columns{"currencycode"}, Right: config.Columns{"isocurrencycode"}}},
				Columns: []config.ColumnMap{
					{Left: "currencycode", Right: "isocurrencycode"},
					{Left: "name", Right: "currencyname"},
					{Left: "symbol", Right: "currencysymbol", Default: "¤", HasDefault: true},
				},
			},
			{
				Name: "customers", Left: "custtable", Right: "account", Master: "right", Pos: config.Pos{Line: 36, Column: 5},
				Key: []config.KeyColumn{
					{Left: config.Columns{"dataareaid"}, Right: config.Columns{"msdyn_company"}, Company: true, Pos: config.Pos{Line: 42, Column: 9}},
					{Left: config.Columns{"accountnum"}, Right: config.Columns{"accountnumber"}, Pos: config.Pos{Line: 43, Column: 9}},
				},
				Columns: []config.ColumnMap{
					{Left: "accountnum", Right: "accountnumber", Pos: config.Pos{Line: 45, Column: 9}},
					{Left: "name", Right: "name", Pos: config.Pos{Line: 46, Column: 9}},
					{Left: "custtype", Right: "customertypecode", Pos: config.Pos{Line: 47, Column: 9},
						ValueMap: map[string]string{"Customer": "1", "Vendor": "2"}, ValueMapPairs: [][2]string{{"Customer", "1"}, {"Vendor", "2"}}},
					{Right: "description", Direction: config.LeftToRight, LeftToRight: `name + " (" + accountnum + ")"`, Pos: config.Pos{Line: 48, Column: 9}},
					{Left: "creditlimit", Right: "creditlimit", Default: int64(0), HasDefault: true, Pos: config.Pos{Line: 49, Column: 9}},
				},
				Lookups: []config.Lookup{
					{Map: "companies", Left: config.Columns{"dataareaid"}, Right: config.Columns{"msdyn_company"}, RightRef: config.Columns{"cdm_companyid"}, Pos: config.Pos{Line: 51, Column: 9}},
					{Map: "currencies", Left: config.Columns{"currency"}, Right: config.Columns{"transactioncurrencyid"}, Pos: config.Pos{Line: 52, Column: 9}},
					{Map: "customers", Left: config.Columns{"invoiceaccount"}, Right: config.Columns{"msdyn_invoiceaccount"}, RightRef: config.Columns{"accountid"}, Pos: config.Pos{Line: 53, Column: 9}},
				},
				Filter: config.Filter{Left: "blocked != 1", Pos: config.Pos{Line: 55, Column: 7}},
			},
		},
	}
}

// mustCompile compiles map name of cfg against the given tables and fails
// the test on any issue.
func mustCompile(t interface {
	Helper()
	Fatalf(string, ...any)
}, cfg *config.Config, name string, left, right map[string]connector.Table) *Map {
	t.Helper()
	var m config.Map
	for _, x := range cfg.Maps {
		if x.Name == name {
			m = x
		}
	}
	cm, issues := Compile(cfg, m, tablesOf(left, right))
	if len(issues) > 0 || cm == nil {
		var b strings.Builder
		for _, is := range issues {
			b.WriteString("\n" + is.String())
		}
		t.Fatalf("compile %s: %d issues:%s", name, len(issues), b.String())
	}
	return cm
}

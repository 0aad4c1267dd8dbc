package app_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The ERP ↔ CRM model of the acceptance tests: the shape of Dynamics 365
// finance and operations (natural keys, every company-specific row keyed
// by its legal entity dataareaid) against Dataverse (generated uuids, a
// company referenced by uuid, references by uuid). Three companies share
// account numbers and customer group codes. The same shape is created on
// SQLite, PostgreSQL and MariaDB; only the spelling of types differs.

// erpModelSQL is the ERP's schema on driver.
func erpModelSQL(driver string) []string {
	return sqliteDecimals(driver, []string{
		`CREATE TABLE companies (dataareaid VARCHAR(8) PRIMARY KEY, name TEXT)`,
		`CREATE TABLE currencies (currencycode VARCHAR(20) PRIMARY KEY, name TEXT, symbol VARCHAR(20))`,
		`CREATE TABLE custgroup (dataareaid VARCHAR(8) NOT NULL, custgroup VARCHAR(20) NOT NULL, description TEXT,
			PRIMARY KEY (dataareaid, custgroup))`,
		`CREATE TABLE custtable (dataareaid VARCHAR(8) NOT NULL, accountnum VARCHAR(40) NOT NULL, name TEXT NOT NULL,
			currency VARCHAR(20), custgroup VARCHAR(20), invoiceaccount VARCHAR(40), creditlimit DECIMAL(19,4), custtype VARCHAR(20),
			PRIMARY KEY (dataareaid, accountnum))`,
		`CREATE TABLE salestable (dataareaid VARCHAR(8) NOT NULL, salesid VARCHAR(40) NOT NULL, custaccount VARCHAR(40),
			currency VARCHAR(20), total DECIMAL(19,4), PRIMARY KEY (dataareaid, salesid))`,
		`CREATE TABLE salesline (dataareaid VARCHAR(8) NOT NULL, salesid VARCHAR(40) NOT NULL, linenum INT NOT NULL,
			itemid VARCHAR(40), qty DECIMAL(19,4), lineamount DECIMAL(19,4), PRIMARY KEY (dataareaid, salesid, linenum))`,
	})
}

// crmModelSQL is the CRM's schema on driver: every primary key a uuid the
// database generates.
func crmModelSQL(driver string) []string {
	id := map[string]string{
		"sqlite":   "UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16))))",
		"postgres": "UUID PRIMARY KEY DEFAULT gen_random_uuid()",
		"mysql":    "UUID PRIMARY KEY DEFAULT (UUID())",
	}[driver]
	return sqliteDecimals(driver, []string{
		`CREATE TABLE cdm_company (cdm_companyid ` + id + `, cdm_companycode VARCHAR(8) NOT NULL UNIQUE, cdm_name TEXT)`,
		`CREATE TABLE transactioncurrency (transactioncurrencyid ` + id + `, isocurrencycode VARCHAR(20) NOT NULL UNIQUE,
			currencyname TEXT, currencysymbol VARCHAR(20))`,
		`CREATE TABLE msdyn_customergroup (msdyn_customergroupid ` + id + `, msdyn_company UUID NOT NULL, msdyn_groupid VARCHAR(20) NOT NULL,
			msdyn_description TEXT, UNIQUE (msdyn_company, msdyn_groupid))`,
		`CREATE TABLE account (accountid ` + id + `, msdyn_company UUID NOT NULL, accountnumber VARCHAR(40) NOT NULL, name TEXT,
			transactioncurrencyid UUID, msdyn_customergroupid UUID, msdyn_invoiceaccount UUID, creditlimit DECIMAL(19,4),
			customertypecode INT, crm_only_rating INT NOT NULL, UNIQUE (msdyn_company, accountnumber))`,
		`CREATE TABLE salesorder (salesorderid ` + id + `, msdyn_company UUID NOT NULL, ordernumber VARCHAR(40) NOT NULL, customerid UUID,
			transactioncurrencyid UUID, totalamount DECIMAL(19,4), UNIQUE (msdyn_company, ordernumber))`,
		`CREATE TABLE salesorderdetail (salesorderdetailid ` + id + `, salesorderid UUID NOT NULL, linenumber INT NOT NULL,
			productname VARCHAR(40), quantity DECIMAL(19,4), amount DECIMAL(19,4), UNIQUE (salesorderid, linenumber))`,
	})
}

// sqliteDecimals gives SQLite's decimal columns text affinity, which keeps
// every digit (see the sqlite connector's documentation).
func sqliteDecimals(driver string, stmts []string) []string {
	if driver != "sqlite" {
		return stmts
	}
	for i := range stmts {
		stmts[i] = strings.ReplaceAll(stmts[i], "DECIMAL(19,4)", "DECIMAL_TEXT(19,4)")
	}
	return stmts
}

// modelMaps are the maps of the model in their natural order. Customer
// groups, customers and orders are per company; the lookups into them need
// no company column: the engine scopes them to the row's company. Order
// lines are keyed on the CRM by their order's uuid.
var modelMaps = map[string]string{
	"companies": `  - name: companies
    left: companies
    right: cdm_company
    key: [{left: dataareaid, right: cdm_companycode}]
    columns:
      - {left: dataareaid, right: cdm_companycode}
      - {left: name, right: cdm_name}
`,
	"currencies": `  - name: currencies
    left: currencies
    right: transactioncurrency
    key: [{left: currencycode, right: isocurrencycode}]
    columns:
      - {left: currencycode, right: isocurrencycode}
      - {left: name, right: currencyname}
      - {left: symbol, right: currencysymbol}
`,
	"customergroups": `  - name: customergroups
    left: custgroup
    right: msdyn_customergroup
    key:
      - {left: dataareaid, right: msdyn_company, company: true}
      - {left: custgroup, right: msdyn_groupid}
    columns:
      - {left: custgroup, right: msdyn_groupid}
      - {left: description, right: msdyn_description}
    lookups:
      - {map: companies, left: dataareaid, right: msdyn_company, right_ref: cdm_companyid}
`,
	"customers": `  - name: customers
    left: custtable
    right: account
    key:
      - {left: dataareaid, right: msdyn_company, company: true}
      - {left: accountnum, right: accountnumber}
    columns:
      - {left: accountnum, right: accountnumber}
      - {left: name, right: name}
      - {left: creditlimit, right: creditlimit}
      - {left: custtype, right: customertypecode, value_map: {Organization: "1", Person: "2"}}
      - {right: crm_only_rating, default: 3, direction: left_to_right}
    lookups:
      - {map: companies, left: dataareaid, right: msdyn_company, right_ref: cdm_companyid}
      - {map: currencies, left: currency, right: transactioncurrencyid, right_ref: transactioncurrencyid}
      - {map: customergroups, left: custgroup, left_ref: custgroup, right: msdyn_customergroupid, right_ref: msdyn_customergroupid}
      - {map: customers, left: invoiceaccount, left_ref: accountnum, right: msdyn_invoiceaccount, right_ref: accountid}
`,
	"salesorders": `  - name: salesorders
    left: salestable
    right: salesorder
    key:
      - {left: dataareaid, right: msdyn_company, company: true}
      - {left: salesid, right: ordernumber}
    columns:
      - {left: salesid, right: ordernumber}
      - {left: total, right: totalamount}
    lookups:
      - {map: companies, left: dataareaid, right: msdyn_company, right_ref: cdm_companyid}
      - {map: customers, left: custaccount, left_ref: accountnum, right: customerid, right_ref: accountid}
      - {map: currencies, left: currency, right: transactioncurrencyid, right_ref: transactioncurrencyid}
`,
	"salesorderlines": `  - name: salesorderlines
    left: salesline
    right: salesorderdetail
    key:
      - {left: [dataareaid, salesid], right: salesorderid}
      - {left: linenum, right: linenumber}
    columns:
      - {left: linenum, right: linenumber}
      - {left: itemid, right: productname}
      - {left: qty, right: quantity}
      - {left: lineamount, right: amount}
    lookups:
      - {map: salesorders, left: [dataareaid, salesid], right: salesorderid, right_ref: salesorderid}
`,
}

// modelOrder is the natural order of the maps: every map after those it
// references.
var modelOrder = []string{"companies", "currencies", "customergroups", "customers", "salesorders", "salesorderlines"}

// modelSide is one side of a model link: its driver, the engine's DSN and
// the application's connection.
type modelSide struct {
	driver, dsn string
	db          *sql.DB
}

// newModelSide creates an empty database for one side with its schema.
func newModelSide(t *testing.T, driver string, erp bool) modelSide {
	t.Helper()
	s := modelSide{driver: driver}
	if driver == "sqlite" {
		name := "crm.db"
		if erp {
			name = "erp.db"
		}
		s.dsn = filepath.Join(t.TempDir(), name)
		s.db = openDB(t, s.dsn)
	} else {
		s.dsn, s.db = serverDB(t, driver, "")
		s.db.SetMaxOpenConns(12)
	}
	stmts := crmModelSQL(driver)
	if erp {
		stmts = erpModelSQL(driver)
	}
	for _, q := range stmts {
		mustExec(t, s.db, q)
	}
	return s
}

// modelLink is a running engine on a model link.
type modelLink struct {
	t        *testing.T
	p        *engineProc
	erp, crm modelSide
	maps     []string // the maps in the configuration, in file order
}

// startModel writes the configuration with the maps named in order and
// starts `dualwrite serve` on it. The maps are not run.
func startModel(t *testing.T, erp, crm modelSide, maps []string) *modelLink {
	t.Helper()
	var b strings.Builder
	for _, m := range maps {
		b.WriteString(modelMaps[m])
	}
	dir := t.TempDir()
	link := linkName()
	p := serveValidConfig(t, dir, func(api string) string {
		return fmt.Sprintf(`link:
  name: %s
  left:  {name: erp, driver: %s, dsn: %q}
  right: {name: crm, driver: %s, dsn: %q}
engine:
  data_dir: %q
  listen: %q
  poll_interval: 10ms
maps:
%s`, link, erp.driver, erp.dsn, crm.driver, crm.dsn, filepath.Join(dir, "state"), api, b.String())
	})
	m := &modelLink{t: t, p: p, erp: erp, crm: crm, maps: maps}
	t.Cleanup(func() {
		// Dependents first, so a PostgreSQL side drops its slot.
		for i := len(maps) - 1; i >= 0; i-- {
			p.post("/api/v1/maps/"+maps[i]+"/stop", nil)
		}
	})
	keepDebugLog(t, p, *convergenceDebug)
	return m
}

// serveValidConfig is serveConfig after `dualwrite validate` accepts the
// configuration, so a configuration the engine cannot read fails the test
// with the validator's report rather than with an engine that never starts.
func serveValidConfig(t *testing.T, dir string, config func(api string) string) *engineProc {
	t.Helper()
	api := freeAddr(t)
	text := config(api)
	cfg := filepath.Join(dir, "check.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "validate", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("dualwrite validate refuses the model's configuration (%v):\n%s", err, out)
	}
	return serveConfig(t, dir, func(real string) string { return strings.Replace(text, api, real, 1) })
}

// post calls an action of the engine's API with the operator token.
// Calls are bounded (engineProc.do): an engine whose API does not answer
// fails the test with the call that hung.
func (m *modelLink) post(path string, body any) (int, string) {
	m.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := m.p.do("POST", path, bytes.NewReader(b))
	if err != nil {
		m.t.Errorf("POST %s: %v", path, err)
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// status is a map's status; "" when the engine does not answer.
func (m *modelLink) status(name string) string {
	var v struct{ Status string }
	if err := m.getJSON("/api/v1/maps/"+name, &v); err != nil {
		return ""
	}
	return v.Status
}

// statuses lists every map's status, for failure messages.
func (m *modelLink) statuses() string {
	var b strings.Builder
	for _, name := range m.maps {
		fmt.Fprintf(&b, "%s=%q ", name, m.status(name))
	}
	return b.String()
}

// runAll runs every map with its related maps and waits until all run.
func (m *modelLink) runAll() {
	m.t.Helper()
	for _, name := range m.maps {
		if st := m.status(name); st == "Running" || st == "Initializing" || st == "Resuming" {
			continue
		}
		if code, body := m.post("/api/v1/maps/"+name+"/run", map[string]any{"with_related": true}); code != 200 && !strings.Contains(body, "DW2001") {
			m.t.Fatalf("run %s: %d %s\nengine log:\n%s", name, code, body, problemsIn(m.p.logs.Name()))
		}
	}
	m.waitRunning()
}

func (m *modelLink) waitRunning() {
	m.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for _, name := range m.maps {
		for m.status(name) != "Running" {
			if time.Now().After(deadline) {
				m.t.Fatalf("%s never reached Running: %s\nengine warnings and errors:\n%s", name, m.statuses(), problemsIn(m.p.logs.Name()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// errorCounts reads, through the API, the initial-sync errors and the
// catch-up errors of every map with their first messages.
func (m *modelLink) errorCounts() (initial, catchUp int, detail string) {
	m.t.Helper()
	var b strings.Builder
	for _, name := range m.maps {
		for _, kind := range []string{"errors", "catchup-errors"} {
			var v struct {
				Errors []struct{ Key, Code, Message, Direction string }
				Total  int
			}
			if err := m.getJSON("/api/v1/maps/"+name+"/"+kind+"?limit=5", &v); err != nil {
				m.t.Fatalf("read %s of %s: %v", kind, name, err)
			}
			if kind == "errors" {
				initial += v.Total
			} else {
				catchUp += v.Total
			}
			for _, e := range v.Errors {
				fmt.Fprintf(&b, "%s %s %s %s: %s %s\n", name, kind, e.Direction, e.Key, e.Code, e.Message)
			}
		}
	}
	return initial, catchUp, b.String()
}

// appliedTotal sums the applied counters of every map.
func (m *modelLink) appliedTotal() int64 {
	m.t.Helper()
	var n int64
	for _, name := range m.maps {
		var v struct{ Applied map[string]int64 }
		if err := m.getJSON("/api/v1/maps/"+name, &v); err != nil {
			m.t.Fatal(err)
		}
		for _, x := range v.Applied {
			n += x
		}
	}
	return n
}

// getJSON reads an API resource with the operator token.
func (m *modelLink) getJSON(path string, out any) error {
	resp, err := m.p.do("GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// modelDump is one side read in business terms: table → business key →
// values, every uuid reference resolved to the business key of the row it
// points at (so a reference to the wrong company's row shows), and
// decimals without trailing zeros.
type modelDump map[string]map[string]string

// The business queries. Each returns the key columns first (nkey of them)
// and then the values. A CRM reference whose uuid matches no row reads as
// "<dangling>".
var erpDumpQueries = map[string]struct {
	q    string
	nkey int
}{
	"companies":  {`SELECT dataareaid, name FROM companies`, 1},
	"currencies": {`SELECT currencycode, name, symbol FROM currencies`, 1},
	"groups":     {`SELECT dataareaid, custgroup, description FROM custgroup`, 2},
	"customers": {`SELECT dataareaid, accountnum, name, currency,
		CASE WHEN custgroup IS NULL THEN NULL ELSE dataareaid END, custgroup,
		CASE WHEN invoiceaccount IS NULL THEN NULL ELSE dataareaid END, invoiceaccount,
		creditlimit, custtype FROM custtable`, 2},
	"orders": {`SELECT dataareaid, salesid, CASE WHEN custaccount IS NULL THEN NULL ELSE dataareaid END, custaccount, currency, total FROM salestable`, 2},
	"lines":  {`SELECT dataareaid, salesid, linenum, itemid, qty, lineamount FROM salesline`, 3},
}

var crmDumpQueries = map[string]struct {
	q    string
	nkey int
}{
	"companies":  {`SELECT cdm_companycode, cdm_name FROM cdm_company`, 1},
	"currencies": {`SELECT isocurrencycode, currencyname, currencysymbol FROM transactioncurrency`, 1},
	"groups": {`SELECT COALESCE(c.cdm_companycode, '<dangling>'), g.msdyn_groupid, g.msdyn_description
		FROM msdyn_customergroup g LEFT JOIN cdm_company c ON c.cdm_companyid = g.msdyn_company`, 2},
	"customers": {`SELECT COALESCE(c.cdm_companycode, '<dangling>'), a.accountnumber, a.name,
		CASE WHEN a.transactioncurrencyid IS NULL THEN NULL ELSE COALESCE(cur.isocurrencycode, '<dangling>') END,
		CASE WHEN a.msdyn_customergroupid IS NULL THEN NULL ELSE COALESCE(gc.cdm_companycode, '<dangling>') END, g.msdyn_groupid,
		CASE WHEN a.msdyn_invoiceaccount IS NULL THEN NULL ELSE COALESCE(ic.cdm_companycode, '<dangling>') END, ia.accountnumber,
		a.creditlimit, CASE a.customertypecode WHEN 1 THEN 'Organization' WHEN 2 THEN 'Person' ELSE NULL END
		FROM account a
		LEFT JOIN cdm_company c ON c.cdm_companyid = a.msdyn_company
		LEFT JOIN transactioncurrency cur ON cur.transactioncurrencyid = a.transactioncurrencyid
		LEFT JOIN msdyn_customergroup g ON g.msdyn_customergroupid = a.msdyn_customergroupid
		LEFT JOIN cdm_company gc ON gc.cdm_companyid = g.msdyn_company
		LEFT JOIN account ia ON ia.accountid = a.msdyn_invoiceaccount
		LEFT JOIN cdm_company ic ON ic.cdm_companyid = ia.msdyn_company`, 2},
	"orders": {`SELECT COALESCE(c.cdm_companycode, '<dangling>'), o.ordernumber,
		CASE WHEN o.customerid IS NULL THEN NULL ELSE COALESCE(ac.cdm_companycode, '<dangling>') END, a.accountnumber,
		CASE WHEN o.transactioncurrencyid IS NULL THEN NULL ELSE COALESCE(cur.isocurrencycode, '<dangling>') END, o.totalamount
		FROM salesorder o
		LEFT JOIN cdm_company c ON c.cdm_companyid = o.msdyn_company
		LEFT JOIN account a ON a.accountid = o.customerid
		LEFT JOIN cdm_company ac ON ac.cdm_companyid = a.msdyn_company
		LEFT JOIN transactioncurrency cur ON cur.transactioncurrencyid = o.transactioncurrencyid`, 2},
	"lines": {`SELECT COALESCE(c.cdm_companycode, '<dangling>'), COALESCE(o.ordernumber, '<dangling>'), d.linenumber, d.productname, d.quantity, d.amount
		FROM salesorderdetail d
		LEFT JOIN salesorder o ON o.salesorderid = d.salesorderid
		LEFT JOIN cdm_company c ON c.cdm_companyid = o.msdyn_company`, 3},
}

// dumpModel reads one side in business terms. q is a queryer: the side's
// *sql.DB, or a transaction for one snapshot.
func dumpModel(t *testing.T, q queryer, erp bool) modelDump {
	t.Helper()
	queries := crmDumpQueries
	if erp {
		queries = erpDumpQueries
	}
	out := modelDump{}
	for table, dq := range queries {
		rows, err := q.Query(dq.q)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		out[table] = map[string]string{}
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			texts := make([]string, len(vals))
			for i, v := range vals {
				texts[i] = "∅"
				if v.Valid {
					texts[i] = trimDecimal(v).String
				}
			}
			key := strings.Join(texts[:dq.nkey], "/")
			// A reference is written as company/key on both sides: the
			// pairs of columns after the key are joined where the
			// queries read a (company, code) pair.
			out[table][key] = joinRefs(table, texts[dq.nkey:])
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		rows.Close()
	}
	return out
}

type queryer interface {
	Query(q string, args ...any) (*sql.Rows, error)
}

// joinRefs joins each (company, code) reference pair of a business row
// into one field "company/code" (or "∅" for no reference).
func joinRefs(table string, v []string) string {
	pair := func(c, k string) string {
		if c == "∅" && k == "∅" {
			return "∅"
		}
		return c + "/" + k
	}
	switch table {
	case "customers": // name, currency, group(c,k), invoice(c,k), creditlimit, custtype
		v = []string{v[0], v[1], pair(v[2], v[3]), pair(v[4], v[5]), v[6], v[7]}
	case "orders": // customer(c,k), currency, total
		v = []string{pair(v[0], v[1]), v[2], v[3]}
	}
	return strings.Join(v, "|")
}

// diffModel lists the differences between two dumps, at most limit lines.
func diffModel(erp, crm modelDump, limit int) string {
	var lines []string
	for table := range erpDumpQueries {
		l, r := erp[table], crm[table]
		for k, v := range l {
			if r[k] != v {
				w, ok := r[k]
				if !ok {
					w = "<missing>"
				}
				lines = append(lines, fmt.Sprintf("%s %s: erp %.100q, crm %.100q", table, k, v, w))
			}
		}
		for k, v := range r {
			if _, ok := l[k]; !ok {
				lines = append(lines, fmt.Sprintf("%s %s: erp <missing>, crm %.100q", table, k, v))
			}
		}
	}
	sort.Strings(lines)
	n := len(lines)
	if n > limit {
		lines = append(lines[:limit], fmt.Sprintf("... and %d more", n-limit))
	}
	return strings.Join(lines, "\n")
}

// waitModelEqual waits until both sides are equal in business terms and
// returns the ERP's dump, or fails with the differences and the engine's
// errors.
func (m *modelLink) waitModelEqual(what string, within time.Duration) modelDump {
	m.t.Helper()
	l, failure := m.tryModelEqual(what, within)
	if failure != "" {
		m.t.Fatal(failure)
	}
	return l
}

// tryModelEqual is waitModelEqual returning the failure message instead
// of failing, for a test with more to report first.
func (m *modelLink) tryModelEqual(what string, within time.Duration) (modelDump, string) {
	m.t.Helper()
	deadline := time.Now().Add(within)
	for {
		l, r := dumpModel(m.t, m.erp.db, true), dumpModel(m.t, m.crm.db, false)
		d := diffModel(l, r, 40)
		if d == "" {
			return l, ""
		}
		if time.Now().After(deadline) {
			_, _, errs := m.errorCounts()
			return l, fmt.Sprintf("%s: the sides did not become equal under the maps:\n%s\nmap errors:\n%s\nengine warnings and errors:\n%s", what, d, errs, problemsIn(m.p.logs.Name()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package app_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIssue8InitialSyncLookupsAreBatched (failure 5): an initial sync of
// a few thousand customers, each with four lookups (company, currency,
// company-scoped group, invoice account), issues no query per row. The
// count is the server's own: pg_stat_statements on a private PostgreSQL
// server, over both databases of the link, while only the customers map
// copies. Speed itself is measured by `dualwrite bench`.
func TestIssue8InitialSyncLookupsAreBatched(t *testing.T) {
	const perCompany = 1000
	pg := startPrivatePG(t)
	pg.preload("pg_stat_statements")
	admin := openPGAdmin(t, pg.dsn("postgres"))
	mustExec(t, admin, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	var erp, crm modelSide
	for i, s := range []*modelSide{&erp, &crm} {
		s.driver = "postgres"
		s.dsn, s.db = pg.createDB(t)
		stmts := crmModelSQL("postgres")
		if i == 0 {
			stmts = erpModelSQL("postgres")
		}
		mustExecAll(t, s.db, stmts...)
	}
	mustExecAll(t, erp.db,
		`INSERT INTO companies VALUES ('usmf', 'Contoso USA'), ('demf', 'Contoso Germany'), ('gbsi', 'Contoso UK')`,
		`INSERT INTO currencies VALUES ('USD', 'US Dollar', '$'), ('EUR', 'Euro', '€'), ('GBP', 'Pound', '£')`,
		`INSERT INTO custgroup SELECT c, g, c || ' group ' || g FROM unnest(ARRAY['usmf','demf','gbsi']) c, unnest(ARRAY['10','20','30']) g`,
		// Every company has a HEAD account, invoiced by all the others.
		`INSERT INTO custtable (dataareaid, accountnum, name, currency, custgroup) SELECT c, 'HEAD', 'Head of ' || c, 'USD', '10' FROM unnest(ARRAY['usmf','demf','gbsi']) c`,
		fmt.Sprintf(`INSERT INTO custtable (dataareaid, accountnum, name, currency, custgroup, invoiceaccount, creditlimit)
			SELECT c, 'C-' || lpad(i::text, 6, '0'), 'Customer ' || i, (ARRAY['USD','EUR','GBP'])[1 + i %% 3], (ARRAY['10','20','30'])[1 + i %% 3], 'HEAD', i * 1.25
			FROM unnest(ARRAY['usmf','demf','gbsi']) c, generate_series(1, %d) i`, perCompany))
	rows := 3*perCompany + 3
	m := startModel(t, erp, crm, companyMaps)
	// The referenced maps first, so that only the customers' copy is counted.
	for _, n := range companyMaps[:3] {
		if st := m.status(n); st == "Not running" {
			if code, body := m.post("/api/v1/maps/"+n+"/run", map[string]any{"with_related": true}); code != 200 {
				t.Fatalf("run %s: %d %s", n, code, body)
			}
		}
		waitFor(t, n+" running", func() bool { return m.status(n) == "Running" })
	}
	mustExec(t, admin, `SELECT pg_stat_statements_reset()`)
	start := time.Now()
	if code, body := m.post("/api/v1/maps/customers/run", map[string]any{}); code != 200 {
		t.Fatalf("run customers: %d %s", code, body)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for m.status("customers") != "Running" {
		if time.Now().After(deadline) {
			t.Fatalf("customers never reached Running; engine log:\n%s", problemsIn(m.p.logs.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	var statements, reads int64
	var top string
	names := []string{dbName(erp.dsn), dbName(crm.dsn)}
	// Reads are the statements that can resolve a lookup: SELECT and
	// WITH; the apply's writes are counted apart.
	if err := admin.QueryRow(`SELECT COALESCE(sum(calls), 0), COALESCE(sum(calls) FILTER (WHERE query ~* '^\s*(select|with)\M'), 0)
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = ANY($1)`, names).Scan(&statements, &reads); err != nil {
		t.Fatal(err)
	}
	r, err := admin.Query(`SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 140) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = ANY($1) ORDER BY calls DESC LIMIT 5`, names)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var calls int64
		var q string
		if err := r.Scan(&calls, &q); err != nil {
			t.Fatal(err)
		}
		top += fmt.Sprintf("\n  %6d × %s", calls, q)
	}
	r.Close()
	t.Logf("initial sync of %d customers with 4 lookups each: %d statements on both databases, %d of them reads, in %v; most frequent:%s", rows, statements, reads, took.Round(time.Millisecond), top)
	// A batched resolver reads each chunk's references in a few
	// statements; a query per row and lookup gives at least 4 per row.
	if limit := int64(rows / 4); reads > limit {
		t.Errorf("the initial sync of %d customers issued %d reading statements (limit %d, one per 4 rows): lookups are resolved row by row", rows, reads, limit)
	}
	if initial, catchUp, detail := m.errorCounts(); initial+catchUp != 0 {
		t.Errorf("errors: %s", detail)
	}
	m.waitModelEqual("after the initial sync", 30*time.Second)
}

// dbName is the database of a PostgreSQL URL DSN.
func dbName(dsn string) string {
	name := dsn[strings.LastIndex(dsn, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	return name
}

// preload adds a library to the server's shared_preload_libraries and
// restarts it.
func (pg *privatePG) preload(lib string) {
	pg.t.Helper()
	f, err := os.OpenFile(filepath.Join(pg.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		pg.t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "shared_preload_libraries = '%s'\n", lib)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		pg.t.Fatal(err)
	}
	pg.restart("fast")
}

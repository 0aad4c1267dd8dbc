package app_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestLifecycleRejectsInvalidActions(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	var ae *apiError
	// Not running allows only Run.
	err := l.call("POST", "/api/v1/maps/companies/pause", map[string]any{}, nil)
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "DW2001" || !strings.Contains(ae.Body, "Not running") || !strings.Contains(ae.Body, "run") {
		t.Fatalf("pause of a stopped map: %v", err)
	}
	if err := l.call("POST", "/api/v1/maps/companies/stop", nil, nil); !errors.As(err, &ae) || ae.Code != "DW2001" {
		t.Fatalf("stop of a stopped map: %v", err)
	}
	l.mustCall("POST", "/api/v1/maps/companies/run", map[string]any{}, nil)
	l.waitStatus("companies", "Running")
	// Running allows Stop and Pause, not Run.
	if err := l.call("POST", "/api/v1/maps/companies/run", map[string]any{}, nil); !errors.As(err, &ae) || ae.Code != "DW2001" || !strings.Contains(ae.Body, "stop, pause") {
		t.Fatalf("run of a running map: %v", err)
	}
	l.mustCall("POST", "/api/v1/maps/companies/pause", map[string]any{}, nil)
	if st := l.status("companies"); st != "Paused" {
		t.Fatalf("after pause: %s", st)
	}
	// Paused allows only Run (resume).
	if err := l.call("POST", "/api/v1/maps/companies/stop", nil, nil); !errors.As(err, &ae) || ae.Code != "DW2001" || !strings.Contains(ae.Body, "Paused") {
		t.Fatalf("stop of a paused map: %v", err)
	}
	l.mustCall("POST", "/api/v1/maps/companies/run", map[string]any{}, nil)
	l.waitStatus("companies", "Running")
	l.mustCall("POST", "/api/v1/maps/companies/stop", nil, nil)
	if st := l.status("companies"); st != "Not running" {
		t.Fatalf("after stop: %s", st)
	}
	if err := l.call("POST", "/api/v1/maps/nosuch/run", map[string]any{}, nil); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "DW2002" {
		t.Fatalf("unknown map: %v", err)
	}
	// The activity log has every status change with its actor.
	var acts struct {
		Activity []struct{ Actor, Kind, Message string }
	}
	l.mustCall("GET", "/api/v1/maps/companies/activity?limit=100", nil, &acts)
	var statuses []string
	for _, a := range acts.Activity {
		if a.Kind == "status" {
			statuses = append(statuses, a.Message)
		}
	}
	slices.Reverse(statuses)
	want := []string{"Not running → Initializing", "Initializing → Running", "Running → Paused", "Paused → Resuming", "Resuming → Running", "Running → Not running"}
	if !slices.Equal(statuses, want) {
		t.Fatalf("status log:\n got %q\nwant %q", statuses, want)
	}
}

func TestRelatedMapsInDependencyOrder(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	var res struct {
		Status  string
		Related []string
		Acted   []string
	}
	// Without --with-related the map runs and its dependencies come back
	// as recommended, in dependency order (the user's order where free).
	l.mustCall("POST", "/api/v1/maps/customergroups/run", map[string]any{}, &res)
	l.waitStatus("customergroups", "Running")
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{"with_related": true}, &res)
	if want := []string{"companies", "currencies"}; !slices.Equal(res.Related, want) {
		t.Fatalf("related = %v, want %v (customergroups already runs)", res.Related, want)
	}
	if want := []string{"companies", "currencies", "customers"}; !slices.Equal(res.Acted, want) {
		t.Fatalf("acted = %v, want %v", res.Acted, want)
	}
	l.waitStatus("customers", "Running")
	// Pause computes its related maps too.
	l.mustCall("POST", "/api/v1/maps/customers/pause", map[string]any{"with_related": false}, &res)
	if want := []string{"companies", "currencies", "customergroups"}; !slices.Equal(res.Related, want) {
		t.Fatalf("pause related = %v, want %v", res.Related, want)
	}
	if st := l.status("companies"); st != "Running" {
		t.Fatalf("companies paused without --with-related: %s", st)
	}
}

func TestInitialSyncBothWaysMasterWins(t *testing.T) {
	erp := baseERP + `
INSERT INTO currencies VALUES ('GBP', 'Pound', '£');
INSERT INTO custtable (dataareaid, accountnum, name, currency, custgroup, custtype, creditlimit, invoiceaccount) VALUES
	('usmf', 'US-001', 'Contoso ERP name', 'USD', '10', 'Organization', '1000.0000', NULL),
	('usmf', 'US-002', 'Fabrikam', 'USD', '10', 'Person', '20.5000', 'US-001'),
	('demf', 'DE-001', 'Müller GmbH ''quoted'' 😀', 'EUR', NULL, 'Organization', '0.0000', NULL);
INSERT INTO custtable (dataareaid, accountnum, name, blocked) VALUES ('usmf', 'US-009', 'Blocked customer', 1);
`
	crm := `
INSERT INTO cdm_company (cdm_companyid, cdm_companycode, cdm_name) VALUES ('c-usmf', 'usmf', 'Contoso USA'), ('c-gbsi', 'gbsi', 'Contoso UK');
INSERT INTO transactioncurrency (transactioncurrencyid, isocurrencycode, currencyname, currencysymbol) VALUES ('t-usd', 'USD', 'US Dollar', '$'), ('t-eur', 'EUR', 'Euro (CRM)', '€'), ('t-jpy', 'JPY', 'Yen', '¥');
INSERT INTO msdyn_customergroup (msdyn_customergroupid, msdyn_groupid, msdyn_description) VALUES ('g-10', '10', 'Wholesale');
INSERT INTO account (accountid, msdyn_company, accountnumber, name, transactioncurrencyid, msdyn_customergroupid, customertypecode, creditlimit)
	VALUES ('a-1', 'c-usmf', 'US-001', 'Contoso CRM name', 't-usd', 'g-10', 1, '3000.0000'),
	       ('a-3', 'c-usmf', 'US-003', 'Adventure Works', 't-usd', NULL, 2, '12.0000');
`
	l := newLink(t, erp, crm)
	l.start()
	l.runAll()

	// Rows on one side only were created on the other.
	if got := l.queryString(l.erp, `SELECT name FROM companies WHERE dataareaid='gbsi'`); got != "Contoso UK" {
		t.Errorf("gbsi on erp: %s", got)
	}
	if got := l.queryString(l.crm, `SELECT cdm_name FROM cdm_company WHERE cdm_companycode='demf'`); got != "Contoso Germany" {
		t.Errorf("demf on crm: %s", got)
	}
	if got := l.queryString(l.erp, `SELECT name || '|' || printf('%.4f', creditlimit) || '|' || custtype FROM custtable WHERE accountnum='US-003'`); got != "Adventure Works|12.0000|Person" {
		t.Errorf("US-003 on erp: %s", got)
	}
	// The conflict (same key, different values): the master (crm) wins on both sides.
	if got := l.queryString(l.erp, `SELECT name || '|' || printf('%.4f', creditlimit) FROM custtable WHERE accountnum='US-001'`); got != "Contoso CRM name|3000.0000" {
		t.Errorf("US-001 on erp after conflict: %s", got)
	}
	if got := l.queryString(l.crm, `SELECT currencyname FROM transactioncurrency WHERE isocurrencycode='EUR'`); got != "Euro (CRM)" {
		t.Errorf("EUR on crm: %s", got)
	}
	if got := l.queryString(l.erp, `SELECT name FROM currencies WHERE currencycode='EUR'`); got != "Euro (CRM)" {
		t.Errorf("EUR on erp after conflict: %s", got)
	}
	// Lookups: currency code ↔ surrogate id, company code ↔ company id, and
	// the self-referencing invoice account resolved in a second pass.
	if got := l.queryString(l.crm, `SELECT t.isocurrencycode || '|' || c.cdm_companycode || '|' || a.customertypecode || '|' || a.description FROM account a
		JOIN transactioncurrency t ON t.transactioncurrencyid = a.transactioncurrencyid
		JOIN cdm_company c ON c.cdm_companyid = a.msdyn_company WHERE a.accountnumber='US-002'`); got != "USD|usmf|2|Fabrikam (US-002)" {
		t.Errorf("US-002 lookups on crm: %s", got)
	}
	if got := l.queryString(l.crm, `SELECT inv.accountnumber FROM account a JOIN account inv ON inv.accountid = a.msdyn_invoiceaccount WHERE a.accountnumber='US-002'`); got != "US-001" {
		t.Errorf("US-002 invoice account on crm: %s", got)
	}
	if got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='DE-001'`); got != "Müller GmbH 'quoted' 😀" {
		t.Errorf("unicode name: %s", got)
	}
	// The filter kept the blocked customer on the ERP.
	if n := l.count(l.crm, `SELECT count(*) FROM account WHERE accountnumber='US-009'`); n != 0 {
		t.Errorf("blocked customer synced")
	}
	var errs struct{ Errors []map[string]any }
	l.mustCall("GET", "/api/v1/maps/customers/errors", nil, &errs)
	if len(errs.Errors) != 0 {
		t.Errorf("initial sync errors: %v", errs)
	}
	// The resolved conflict is recorded.
	var acts struct {
		Activity []struct{ Kind, Message string }
	}
	l.mustCall("GET", "/api/v1/maps/customers/activity?limit=100", nil, &acts)
	found := false
	for _, a := range acts.Activity {
		if a.Kind == "conflict" && strings.Contains(a.Message, "US-001") {
			found = true
		}
	}
	if !found {
		t.Errorf("no conflict recorded for US-001: %v", acts)
	}
	if ok, detail := l.verifyAll(); !ok {
		t.Fatalf("sides differ: %s", detail)
	}
}

func TestInitialSyncErrorsAreKeptAndRerunRetriesThem(t *testing.T) {
	erp := baseERP + `
INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES
	('usmf', 'US-001', 'Good', 'USD'),
	('usmf', 'US-002', 'Bad currency', 'XXX'),
	('usmf', 'US-003', 'Good too', 'EUR');
`
	l := newLink(t, erp, "")
	l.start()
	l.runAll()
	var list struct {
		Errors []struct {
			ID             int64
			Direction, Key string
			Code, Message  string
		}
	}
	l.mustCall("GET", "/api/v1/maps/customers/errors", nil, &list)
	errs := list.Errors
	if len(errs) != 1 || errs[0].Code != "DW3002" || !strings.Contains(errs[0].Key, "US-002") || errs[0].Direction != "erp->crm" {
		t.Fatalf("errors = %+v", errs)
	}
	if n := l.count(l.crm, `SELECT count(*) FROM account`); n != 2 {
		t.Fatalf("the good rows did not go on: %d accounts", n)
	}
	// Fix the cause: the currency arrives through the currencies map.
	l.exec(l.erp, `INSERT INTO currencies VALUES ('XXX', 'Test currency', 'x')`)
	l.eventually("XXX reaches crm", func() (bool, string) {
		n := l.count(l.crm, `SELECT count(*) FROM transactioncurrency WHERE isocurrencycode='XXX'`)
		return n == 1, fmt.Sprint(n)
	})
	var rr struct{ Retried, Succeeded, Failed int }
	l.mustCall("POST", "/api/v1/maps/customers/rerun", nil, &rr)
	if rr.Retried != 1 || rr.Succeeded != 1 {
		t.Fatalf("rerun = %+v", rr)
	}
	l.mustCall("GET", "/api/v1/maps/customers/errors", nil, &list)
	if len(list.Errors) != 0 {
		t.Fatalf("errors after rerun: %+v", list.Errors)
	}
	if ok, detail := l.verifyAll(); !ok {
		t.Fatalf("sides differ: %s", detail)
	}
}

func TestLiveSyncBothWaysWithoutEcho(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	l.runAll()
	// ERP → CRM: insert, update, delete.
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency, creditlimit) VALUES ('usmf', 'L-1', 'Live one', 'USD', '10.0000')`)
	l.eventually("insert reaches crm", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name || '|' || printf('%.4f', creditlimit) FROM account WHERE accountnumber='L-1'`)
		return got == "Live one|10.0000", got
	})
	l.exec(l.erp, `UPDATE custtable SET name = 'Live one, renamed', creditlimit = '11.5000' WHERE accountnum = 'L-1'`)
	l.eventually("update reaches crm", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name || '|' || printf('%.4f', creditlimit) FROM account WHERE accountnumber='L-1'`)
		return got == "Live one, renamed|11.5000", got
	})
	// CRM → ERP.
	l.exec(l.crm, `INSERT INTO account (msdyn_company, accountnumber, name, customertypecode) SELECT cdm_companyid, 'L-2', 'From CRM', 2 FROM cdm_company WHERE cdm_companycode='demf'`)
	l.eventually("insert reaches erp", func() (bool, string) {
		got := l.queryString(l.erp, `SELECT dataareaid || '|' || name || '|' || custtype FROM custtable WHERE accountnum='L-2'`)
		return got == "demf|From CRM|Person", got
	})
	l.exec(l.crm, `UPDATE account SET name = NULL WHERE accountnumber = 'L-2'`)
	l.eventually("null becomes the default on erp", func() (bool, string) {
		got := l.queryString(l.erp, `SELECT name FROM custtable WHERE accountnum='L-2'`)
		return got == "(no name)", got
	})
	l.exec(l.crm, `DELETE FROM account WHERE accountnumber = 'L-2'`)
	l.eventually("delete reaches erp", func() (bool, string) {
		n := l.count(l.erp, `SELECT count(*) FROM custtable WHERE accountnum='L-2'`)
		return n == 0, fmt.Sprint(n)
	})
	l.exec(l.erp, `DELETE FROM custtable WHERE accountnum = 'L-1'`)
	l.eventually("delete reaches crm", func() (bool, string) {
		n := l.count(l.crm, `SELECT count(*) FROM account WHERE accountnumber='L-1'`)
		return n == 0, fmt.Sprint(n)
	})
	// No echo, by counting: every write the engine applied on a side was
	// seen by that side's capture and dropped, and the applied counters
	// equal the user changes made on the other side.
	var v struct{ Applied map[string]int64 }
	l.mustCall("GET", "/api/v1/maps/customers", nil, &v)
	if v.Applied["erp->crm"] != 3 || v.Applied["crm->erp"] != 3 {
		t.Fatalf("applied = %v, want 3 each way (an echo would add more)", v.Applied)
	}
	if e := l.r.Engine.EchoesSuppressed("crm"); e < 3 {
		t.Fatalf("crm capture suppressed %d echoes, want >= 3", e)
	}
	if e := l.r.Engine.EchoesSuppressed("erp"); e < 3 {
		t.Fatalf("erp capture suppressed %d echoes, want >= 3", e)
	}
	if ok, detail := l.verifyAll(); !ok {
		t.Fatalf("sides differ: %s", detail)
	}
}

func TestPauseQueuesAndResumeReplaysEveryValue(t *testing.T) {
	l := newLink(t, baseERP+`INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'P-1', 'Start', 'USD'), ('usmf', 'P-2', 'Other', 'USD');`, "")
	l.start()
	l.runAll()
	l.mustCall("POST", "/api/v1/maps/customers/pause", map[string]any{}, nil)
	for _, n := range []string{"A", "B", "C"} {
		l.exec(l.erp, fmt.Sprintf(`UPDATE custtable SET name = '%s' WHERE accountnum = 'P-1'`, n))
	}
	// SQLite capture may group the three commits into fewer transactions;
	// what matters is that they wait in the queue.
	l.eventually("changes queued", func() (bool, string) {
		var v struct {
			QueueDepth int64 `json:"queue_depth"`
		}
		l.mustCall("GET", "/api/v1/maps/customers", nil, &v)
		return v.QueueDepth >= 1, fmt.Sprint(v.QueueDepth)
	})
	if got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='P-1'`); got != "Start" {
		t.Fatalf("a paused map applied a change: %s", got)
	}
	// The queue survives an engine restart.
	l.stop()
	l.exec(l.erp, `UPDATE custtable SET name = 'D' WHERE accountnum = 'P-2'`)
	l.start()
	if st := l.status("customers"); st != "Paused" {
		t.Fatalf("status after restart: %s", st)
	}
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{}, nil)
	l.waitStatus("customers", "Running")
	l.eventually("resume applied the queue", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='P-1'`) + "," + l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='P-2'`)
		return got == "C,D", got
	})
	var names []string
	rows, err := l.crm.Query(`SELECT name FROM name_audit WHERE accountnumber='P-1' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	if want := []string{"A", "B", "C"}; !slices.Equal(names, want) {
		t.Fatalf("values applied on resume = %v, want every one of %v in order", names, want)
	}
}

func TestStatusSurvivesRestartAndCaptureCatchesUp(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	l.runAll()
	l.stop()
	// Changes made while the engine is down are captured after it restarts.
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name) VALUES ('usmf', 'R-1', 'While down')`)
	l.start()
	for _, n := range []string{"companies", "currencies", "customergroups", "customers"} {
		if st := l.status(n); st != "Running" {
			t.Fatalf("%s after restart: %s", n, st)
		}
	}
	l.eventually("change made while down reaches crm", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='R-1'`)
		return got == "While down", got
	})
}

func TestCatchUpErrorsParkTheKeyAndCanBeRetriedOrDiscarded(t *testing.T) {
	l := newLink(t, baseERP, "")
	l.start()
	l.runAll()
	l.mustCall("POST", "/api/v1/maps/customers/pause", map[string]any{}, nil)
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'E-1', 'Bad currency', 'ZZZ')`)
	l.exec(l.erp, `UPDATE custtable SET name = 'Bad currency, second change' WHERE accountnum = 'E-1'`)
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'E-2', 'Fine', 'USD')`)
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name, currency) VALUES ('usmf', 'E-3', 'Also bad', 'QQQ')`)
	l.eventually("queued", func() (bool, string) {
		var v struct {
			QueueDepth int64 `json:"queue_depth"`
		}
		l.mustCall("GET", "/api/v1/maps/customers", nil, &v)
		return v.QueueDepth >= 1, fmt.Sprint(v.QueueDepth)
	})
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{}, nil)
	l.waitStatus("customers", "Running")
	// The bad rows did not block the good one.
	l.eventually("E-2 reaches crm", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='E-2'`)
		return got == "Fine", got
	})
	var errs []struct {
		ID      int64
		Key     string
		Code    string
		Changes int
	}
	fetch := func() {
		var list struct {
			Errors []struct {
				ID      int64
				Key     string
				Code    string
				Changes int
			}
		}
		l.mustCall("GET", "/api/v1/maps/customers/catchup-errors", nil, &list)
		errs = append(errs[:0], list.Errors...)
	}
	l.eventually("two catch-up errors", func() (bool, string) {
		fetch()
		return len(errs) == 2 && errs[0].Changes == 2 && errs[1].Changes == 1, fmt.Sprintf("%+v", errs)
	})
	// A reference to a record that has not arrived parks the key as
	// waiting for it (DW3006).
	if errs[0].Code != "DW3006" || !strings.Contains(errs[0].Key, "E-1") || !strings.Contains(errs[1].Key, "E-3") {
		t.Fatalf("catch-up errors = %+v", errs)
	}
	// A later change to a parked key waits behind it, even live.
	l.exec(l.erp, `UPDATE custtable SET name = 'Bad currency, third change' WHERE accountnum = 'E-1'`)
	l.eventually("third change parked", func() (bool, string) {
		fetch()
		return len(errs) == 2 && errs[0].Changes == 3, fmt.Sprintf("%+v", errs)
	})
	// A retry while the reference is still missing parks the key again,
	// its changes kept in order.
	var rr struct{ Retried, Succeeded, Failed int }
	l.mustCall("POST", "/api/v1/maps/customers/catchup-errors/retry", map[string]any{"ids": []int64{errs[0].ID}}, &rr)
	if rr.Retried != 1 || rr.Failed != 1 {
		t.Fatalf("retry = %+v", rr)
	}
	fetch()
	if len(errs) != 2 || !strings.Contains(errs[1].Key, "E-1") || errs[1].Changes != 3 {
		t.Fatalf("after a retry that cannot succeed yet: %+v", errs)
	}
	// The missing record arrives: the key catches up by itself, all three
	// changes in order.
	l.exec(l.erp, `INSERT INTO currencies VALUES ('ZZZ', 'Zed', 'z')`)
	l.eventually("E-1 catches up by itself", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='E-1'`)
		return got == "Bad currency, third change", got
	})
	l.eventually("only E-3 left", func() (bool, string) {
		fetch()
		return len(errs) == 1 && strings.Contains(errs[0].Key, "E-3"), fmt.Sprintf("%+v", errs)
	})
	var audit []string
	rows, _ := l.crm.Query(`SELECT name FROM name_audit WHERE accountnumber='E-1' ORDER BY seq`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		audit = append(audit, n)
	}
	rows.Close()
	if want := []string{"Bad currency, second change", "Bad currency, third change"}; !slices.Equal(audit, want) {
		t.Fatalf("E-1 updates applied = %v, want %v", audit, want)
	}
	// Discard the other.
	var n struct{ Discarded int }
	l.mustCall("POST", "/api/v1/maps/customers/catchup-errors/discard", map[string]any{"all": true}, &n)
	fetch()
	if len(errs) != 0 {
		t.Fatalf("after discard: %+v", errs)
	}
	if got := l.count(l.crm, `SELECT count(*) FROM account WHERE accountnumber='E-3'`); got != 0 {
		t.Fatalf("discarded change was applied")
	}
}

func TestIntegrationKeyChangeIsAChangeOfIdentity(t *testing.T) {
	l := newLink(t, baseERP+`INSERT INTO custtable (dataareaid, accountnum, name) VALUES ('usmf', 'K-1', 'Keyed');`, "")
	l.start()
	l.runAll()
	l.exec(l.erp, `UPDATE custtable SET accountnum = 'K-2' WHERE accountnum = 'K-1'`)
	l.eventually("key change reaches crm", func() (bool, string) {
		old := l.count(l.crm, `SELECT count(*) FROM account WHERE accountnumber='K-1'`)
		nw := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='K-2'`)
		return old == 0 && nw == "Keyed", fmt.Sprint(old, nw)
	})
	if ok, detail := l.verifyAll(); !ok {
		t.Fatalf("sides differ: %s", detail)
	}
}

func TestConcurrentEditsConverge(t *testing.T) {
	l := newLink(t, baseERP+`INSERT INTO custtable (dataareaid, accountnum, name, creditlimit) VALUES ('usmf', 'C-1', 'Both', '1.0000');`, "")
	l.start()
	l.runAll()
	// Pause so both edits are made before either side's change is applied:
	// a true concurrent edit of the same column on both sides.
	l.mustCall("POST", "/api/v1/maps/customers/pause", map[string]any{}, nil)
	l.exec(l.erp, `UPDATE custtable SET name = 'ERP edit', creditlimit = '2.0000' WHERE accountnum = 'C-1'`)
	l.exec(l.crm, `UPDATE account SET name = 'CRM edit, later' WHERE accountnumber = 'C-1'`)
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{}, nil)
	l.waitStatus("customers", "Running")
	l.eventually("both sides converge", func() (bool, string) {
		e := l.queryString(l.erp, `SELECT name || '|' || printf('%.4f', creditlimit) FROM custtable WHERE accountnum='C-1'`)
		c := l.queryString(l.crm, `SELECT name || '|' || printf('%.4f', creditlimit) FROM account WHERE accountnumber='C-1'`)
		// The later write wins the name; the credit limit, changed only on
		// the ERP, flows.
		return e == c && e == "CRM edit, later|2.0000", e + " vs " + c
	})
}

func TestSkipInitialSyncGoesStraightToRunning(t *testing.T) {
	l := newLink(t, baseERP+`INSERT INTO custtable (dataareaid, accountnum, name) VALUES ('usmf', 'S-1', 'Pre-existing');`, "")
	l.start()
	for _, n := range []string{"companies", "currencies", "customergroups"} {
		l.mustCall("POST", "/api/v1/maps/"+n+"/run", map[string]any{}, nil)
		l.waitStatus(n, "Running")
	}
	l.mustCall("POST", "/api/v1/maps/customers/run", map[string]any{"skip_initial_sync": true}, nil)
	l.waitStatus("customers", "Running")
	if n := l.count(l.crm, `SELECT count(*) FROM account`); n != 0 {
		t.Fatalf("skip_initial_sync copied %d pre-existing rows", n)
	}
	// Live sync works from then on.
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name) VALUES ('usmf', 'S-2', 'New')`)
	l.eventually("live change reaches crm", func() (bool, string) {
		got := l.queryString(l.crm, `SELECT name FROM account WHERE accountnumber='S-2'`)
		return got == "New", got
	})
	var acts struct {
		Activity []struct{ Kind, Message string }
	}
	l.mustCall("GET", "/api/v1/maps/customers/activity?limit=50", nil, &acts)
	found := false
	for _, a := range acts.Activity {
		if a.Kind == "run" && strings.Contains(a.Message, "initial sync off") {
			found = true
		}
	}
	if !found {
		t.Fatalf("activity log does not record the skipped initial sync: %+v", acts.Activity)
	}
}

func TestQueueWarnsBeforeRetention(t *testing.T) {
	l := newLink(t, baseERP, "")
	cfg := readFile(t, l.cfgPath)
	cfg = strings.Replace(cfg, "  poll_interval: 10ms", "  poll_interval: 10ms\n  queue_retention: 1h\n  queue_warn_at: 400ms", 1)
	if err := os.WriteFile(l.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start()
	l.runAll()
	l.mustCall("POST", "/api/v1/maps/customers/pause", map[string]any{}, nil)
	l.exec(l.erp, `INSERT INTO custtable (dataareaid, accountnum, name) VALUES ('usmf', 'Q-1', 'Queued')`)
	l.eventually("a retention warning in the activity log", func() (bool, string) {
		var acts struct {
			Activity []struct{ Kind, Message string }
		}
		l.mustCall("GET", "/api/v1/maps/customers/activity?limit=50", nil, &acts)
		for _, a := range acts.Activity {
			if a.Kind == "warning" && strings.Contains(a.Message, "DW2020") {
				return true, a.Message
			}
		}
		return false, fmt.Sprint(len(acts.Activity), " entries")
	})
}

// Package demo runs the embedded tour: two databases (SQLite by default,
// or any DSNs given), pre-existing rows on both sides, the pre-built maps
// run with their related maps, initial sync, live edits on both sides,
// pause/edit/resume, and a before/after table. It drives the engine
// through its HTTP API, as a user would.
package demo

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	_ "modernc.org/sqlite" // SQLite for the demo databases

	"github.com/dualwrite/dualwrite/internal/app"
	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/engine"
	"github.com/dualwrite/dualwrite/internal/store"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Options configure the demo.
type Options struct {
	// Dir holds the databases, the configuration and the engine state.
	// Empty: a new temporary directory.
	Dir string
	// Once exits after the tour instead of serving until interrupted.
	Once bool
	// Listen is the API address; default 127.0.0.1:7070.
	Listen string
	// Drivers and DSNs of the two sides; empty means SQLite files in Dir.
	LeftDriver, LeftDSN, RightDriver, RightDSN string
	Out                                        io.Writer
	Logger                                     *slog.Logger
}

// ErrDiverged is returned when the sides are not equal after the tour.
var ErrDiverged = errors.New("the two sides are not equal under the maps")

// Run runs the tour. With Once it returns after the tour: nil only when
// both sides ended equal under every map.
func Run(ctx context.Context, o Options) error {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "dualwrite-demo-")
		if err != nil {
			return fmt.Errorf("create demo directory: %w", err)
		}
		o.Dir = d
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	// Invariant: one engine per data_dir, locked before the demo touches
	// its databases.
	lock, err := store.LockDir(filepath.Join(o.Dir, "state"))
	if err != nil {
		return err
	}
	locked := true
	defer func() {
		if locked {
			lock.Unlock()
		}
	}()
	if o.Listen == "" {
		o.Listen = config.DefaultListen
	}
	if o.LeftDriver == "" {
		o.LeftDriver, o.LeftDSN = "sqlite", filepath.Join(o.Dir, "erp.db")
	}
	if o.RightDriver == "" {
		o.RightDriver, o.RightDSN = "sqlite", filepath.Join(o.Dir, "crm.db")
	}
	t := &tour{out: out, log: log}
	fmt.Fprintf(out, "dualwrite demo in %s\n\n", o.Dir)

	erp, err := openApp(o.LeftDriver, o.LeftDSN)
	if err != nil {
		return fmt.Errorf("open ERP database: %w", err)
	}
	defer erp.Close()
	crm, err := openApp(o.RightDriver, o.RightDSN)
	if err != nil {
		return fmt.Errorf("open CRM database: %w", err)
	}
	defer crm.Close()
	t.erp, t.crm = erp, crm
	if err := seed(ctx, erp, o.LeftDriver, erpSchema, erpSeed); err != nil {
		return fmt.Errorf("create ERP schema: %w", err)
	}
	if err := seed(ctx, crm, o.RightDriver, crmSchema, crmSeed); err != nil {
		return fmt.Errorf("create CRM schema: %w", err)
	}
	cfgPath := filepath.Join(o.Dir, "dualwrite.yaml")
	text := fmt.Sprintf(configYAML, o.LeftDriver, o.LeftDSN, o.RightDriver, o.RightDSN, filepath.Join(o.Dir, "state"), o.Listen)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write demo configuration: %w", err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if issues := cfg.Validate(); len(issues) > 0 {
		return fmt.Errorf("demo configuration: %s", issues[0])
	}
	locked = false // the Running owns the lock now
	r, err := app.StartLocked(ctx, cfg, log, lock)
	if err != nil {
		return err
	}
	defer r.Close()
	t.api = r.URL
	t.token = r.Tokens.Operator
	t.eng = r.Engine
	fmt.Fprintf(out, "Workspace: %s/ (open it in a browser; sign in with the token in %s)\nEngine API on %s (configuration %s)\n\n",
		t.api, auth.TokenPath(cfg.Engine.DataDir, auth.Operator), t.api, cfgPath)

	if err := t.run(ctx); err != nil {
		return err
	}
	equal, err := t.verifyAll(ctx)
	if err != nil {
		return err
	}
	if o.Once {
		// Stop every map, dependents first, so that the sides release
		// their capture resources (a replication slot must not outlive
		// the demo and pin WAL).
		names := t.eng.MapNames()
		for i := len(names) - 1; i >= 0; i-- {
			if err := t.post(ctx, "/api/v1/maps/"+names[i]+"/stop", nil, nil); err != nil {
				return err
			}
		}
		if !equal {
			return ErrDiverged
		}
		return nil
	}
	fmt.Fprintf(out, "\nThe engine keeps running: edit %s or %s and watch in the workspace at %s/. Ctrl-C stops.\n", o.LeftDSN, o.RightDSN, t.api)
	fmt.Fprintf(out, "From another terminal, the maps commands find the engine and its access token through the configuration:\n\n  export DUALWRITE_CONFIG=%s\n  dualwrite maps list\n", cfgPath)
	select {
	case <-ctx.Done():
		return nil
	case err := <-r.Done():
		return err
	}
}

type tour struct {
	out      io.Writer
	log      *slog.Logger
	api      string
	token    string // the operator token, sent with every request
	eng      *engine.Engine
	erp, crm *sql.DB
}

func (t *tour) step(title string) { fmt.Fprintf(t.out, "\n== %s ==\n", title) }

func (t *tour) run(ctx context.Context) error {
	t.step("Before: customer groups on both sides (per company)")
	if err := t.groups(ctx); err != nil {
		return err
	}
	t.step("Before: customers on both sides")
	if err := t.customers(ctx); err != nil {
		return err
	}
	fmt.Fprintln(t.out, "  C-100 is a different customer in each company; group 10 of usmf is not group 10 of demf")

	t.step("Run customers with its related maps")
	var res engine.ActionResult
	if err := t.post(ctx, "/api/v1/maps/customers/run", map[string]any{"with_related": true}, &res); err != nil {
		return err
	}
	fmt.Fprintf(t.out, "related maps recommended for customers, in dependency order: %s\n", strings.Join(res.Related, ", "))
	fmt.Fprintf(t.out, "run customers --with-related: acted on %s\n", strings.Join(res.Acted, ", "))
	if err := t.post(ctx, "/api/v1/maps/vendors/run", map[string]any{"with_related": true}, &res); err != nil {
		return err
	}
	fmt.Fprintf(t.out, "run vendors --with-related: acted on %s\n", strings.Join(res.Acted, ", "))
	if err := t.waitAll(ctx, engine.Running); err != nil {
		return err
	}
	t.step("Initial sync done")
	if err := t.mapsTable(ctx); err != nil {
		return err
	}
	for _, n := range []string{"customers", "currencies"} {
		acts, err := t.activity(ctx, n)
		if err != nil {
			return err
		}
		for _, a := range acts {
			if a.Kind == "conflict" {
				fmt.Fprintf(t.out, "  %s conflict: %s\n", n, a.Message)
			}
		}
	}

	t.step("Live edits on both sides")
	edits := []struct {
		db   *sql.DB
		desc string
		sql  string
	}{
		{t.erp, "ERP: new customer US-004", `INSERT INTO custtable (dataareaid, accountnum, name, currency, custgroup, creditlimit) VALUES ('usmf', 'US-004', 'Tailspin Toys', 'USD', '20', '900.0000')`},
		{t.crm, "CRM: rename Adventure Works", `UPDATE account SET name = 'Adventure Works Cycles' WHERE accountnumber = 'US-003'`},
		{t.erp, "ERP: raise the credit limit of DE-001", `UPDATE custtable SET creditlimit = '15000.0000' WHERE accountnum = 'DE-001'`},
		{t.crm, "CRM: new currency CHF", `INSERT INTO transactioncurrency (isocurrencycode, currencyname, currencysymbol) VALUES ('CHF', 'Swiss franc', 'Fr.')`},
		{t.erp, "ERP: C-100 of demf moves to demf's group 20, invoiced to itself", `UPDATE custtable SET custgroup = '20', invoiceaccount = 'C-100' WHERE dataareaid = 'demf' AND accountnum = 'C-100'`},
	}
	for _, ed := range edits {
		if _, err := ed.db.ExecContext(ctx, ed.sql); err != nil {
			return fmt.Errorf("%s: %w", ed.desc, err)
		}
		fmt.Fprintf(t.out, "  %s\n", ed.desc)
	}
	if err := t.converge(ctx, 15*time.Second); err != nil {
		return err
	}
	fmt.Fprintln(t.out, "  both sides converged")

	t.step("Pause customers, edit while paused, resume")
	if err := t.post(ctx, "/api/v1/maps/customers/pause", map[string]any{"with_related": false}, &res); err != nil {
		return err
	}
	fmt.Fprintf(t.out, "  customers is %s\n", res.Status)
	for _, name := range []string{"Contoso A", "Contoso B", "Contoso C"} {
		if _, err := t.erp.ExecContext(ctx, `UPDATE custtable SET name = `+ph(t.erp, 1)+` WHERE dataareaid = 'usmf' AND accountnum = 'US-001'`, name); err != nil {
			return err
		}
	}
	if _, err := t.crm.ExecContext(ctx, `UPDATE account SET creditlimit = '1500.0000' WHERE accountnumber = 'US-003'`); err != nil {
		return err
	}
	fmt.Fprintln(t.out, "  ERP: US-001 renamed A → B → C; CRM: US-003 credit limit 1500")
	var view engine.MapView
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := t.get(ctx, "/api/v1/maps/customers", &view); err != nil {
			return err
		}
		if view.QueueDepth >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(t.out, "  queued while paused: %d transactions\n", view.QueueDepth)
	if err := t.post(ctx, "/api/v1/maps/customers/run", map[string]any{}, &res); err != nil {
		return err
	}
	fmt.Fprintf(t.out, "  run → %s\n", res.Status)
	if err := t.waitAll(ctx, engine.Running); err != nil {
		return err
	}
	if err := t.converge(ctx, 15*time.Second); err != nil {
		return err
	}
	fmt.Fprintln(t.out, "  resumed: every queued change replayed in order")

	t.step("After: customer groups on both sides (per company)")
	if err := t.groups(ctx); err != nil {
		return err
	}
	t.step("After: customers on both sides")
	return t.customers(ctx)
}

// converge waits until every map is equal on both sides.
func (t *tour) converge(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok := true
		for _, n := range t.eng.MapNames() {
			res, err := t.eng.Verify(ctx, n)
			if err != nil {
				return err
			}
			if !res.Equal {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			_, _ = t.verifyAll(ctx)
			return ErrDiverged
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (t *tour) verifyAll(ctx context.Context) (bool, error) {
	t.step("Verification: both sides under every map")
	all := true
	w := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MAP\tERP ROWS\tCRM ROWS\tEQUAL")
	var details []string
	for _, n := range t.eng.MapNames() {
		res, err := t.eng.Verify(ctx, n)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%v\n", n, res.LeftRows, res.RightRows, res.Equal)
		all = all && res.Equal
		details = append(details, res.Missing...)
		details = append(details, res.Different...)
	}
	w.Flush()
	for _, d := range details {
		fmt.Fprintf(t.out, "  %s\n", d)
	}
	return all, nil
}

func (t *tour) waitAll(ctx context.Context, st engine.Status) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list wire.MapList
		if err := t.get(ctx, "/api/v1/maps", &list); err != nil {
			return err
		}
		done := true
		for _, v := range list.Maps {
			if v.Status != st {
				done = false
			}
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("maps did not reach %s in time", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (t *tour) mapsTable(ctx context.Context) error {
	var list wire.MapList
	if err := t.get(ctx, "/api/v1/maps", &list); err != nil {
		return err
	}
	w := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MAP\tSTATUS\tINITIAL SYNC ROWS\tINIT ERRORS")
	for _, v := range list.Maps {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", v.Name, v.Status, v.InitRowsDone, v.InitErrors)
	}
	return w.Flush()
}

func (t *tour) activity(ctx context.Context, name string) ([]engine.Activity, error) {
	var list wire.ActivityList
	err := t.get(ctx, "/api/v1/maps/"+name+"/activity?limit=50", &list)
	return list.Activity, err
}

// customers prints the customers of both sides, the CRM's lookups resolved
// back to codes for reading: a group or an invoice account shows as
// company/code, so a reference into another company would show.
func (t *tour) customers(ctx context.Context) error {
	w := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SIDE\tCOMPANY\tACCOUNT\tNAME\tCURRENCY\tGROUP\tINVOICE ACCOUNT\tCREDIT LIMIT")
	rows, err := t.erp.QueryContext(ctx, `SELECT dataareaid, accountnum, name, currency,
		CASE WHEN custgroup IS NULL THEN NULL ELSE dataareaid END, custgroup,
		CASE WHEN invoiceaccount IS NULL THEN NULL ELSE dataareaid END, invoiceaccount, creditlimit
		FROM custtable ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	if err := printRows(w, "erp", rows, 4, 6); err != nil {
		return err
	}
	rows, err = t.crm.QueryContext(ctx, `SELECT COALESCE(c.cdm_companycode, '?'), a.accountnumber, COALESCE(a.name, ''), COALESCE(t.isocurrencycode, ''),
		gc.cdm_companycode, g.msdyn_groupid, ic.cdm_companycode, ia.accountnumber, a.creditlimit
		FROM account a LEFT JOIN cdm_company c ON c.cdm_companyid = a.msdyn_company
		LEFT JOIN transactioncurrency t ON t.transactioncurrencyid = a.transactioncurrencyid
		LEFT JOIN msdyn_customergroup g ON g.msdyn_customergroupid = a.msdyn_customergroupid
		LEFT JOIN cdm_company gc ON gc.cdm_companyid = g.msdyn_company
		LEFT JOIN account ia ON ia.accountid = a.msdyn_invoiceaccount
		LEFT JOIN cdm_company ic ON ic.cdm_companyid = ia.msdyn_company
		ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	if err := printRows(w, "crm", rows, 4, 6); err != nil {
		return err
	}
	return w.Flush()
}

// groups prints the customer groups of both sides: the same code in
// several companies, each its own row.
func (t *tour) groups(ctx context.Context) error {
	w := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SIDE\tCOMPANY\tGROUP\tDESCRIPTION")
	rows, err := t.erp.QueryContext(ctx, `SELECT dataareaid, custgroup, description FROM custgroups ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	if err := printRows(w, "erp", rows); err != nil {
		return err
	}
	rows, err = t.crm.QueryContext(ctx, `SELECT COALESCE(c.cdm_companycode, '?'), g.msdyn_groupid, g.msdyn_description
		FROM msdyn_customergroup g LEFT JOIN cdm_company c ON c.cdm_companyid = g.msdyn_company ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	if err := printRows(w, "crm", rows); err != nil {
		return err
	}
	return w.Flush()
}

// printRows prints rows after a side column. Each index in pairs starts a
// (company, code) pair of columns printed as one "company/code" cell.
func printRows(w io.Writer, side string, rows *sql.Rows, pairs ...int) error {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := []string{side}
		for i := 0; i < len(vals); i++ {
			if slices.Contains(pairs, i) {
				if c, k := str(vals[i]), str(vals[i+1]); k != "" {
					cells = append(cells, c+"/"+k)
				} else {
					cells = append(cells, "")
				}
				i++
				continue
			}
			cells = append(cells, str(vals[i]))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return rows.Err()
}

func str(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func (t *tour) get(ctx context.Context, path string, out any) error {
	return t.call(ctx, http.MethodGet, path, nil, out)
}

func (t *tour) post(ctx context.Context, path string, body, out any) error {
	return t.call(ctx, http.MethodPost, path, body, out)
}

func (t *tour) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dualwrite-Actor", "demo")
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

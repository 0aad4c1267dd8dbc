package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// The lookups phase: an ERP-like customer table on the left, a CRM-like
// account table on the right, as Dynamics 365 finance and operations and
// Dataverse have them. Customers are keyed by (company, account number),
// and the same account number exists in every company. Each customer has
// three lookups:
//   - a currency (an ISO code on the left, a generated uuid on the right),
//     into a global currencies map;
//   - a customer group within its own company (company-scoped: both maps
//     have a company key column), into a per-company groups map;
//   - an invoice account, another customer of the same company or itself
//     (a self-reference).
const (
	lkSourceDDL = `CREATE TABLE lk_currency (
	currencycode varchar(3) PRIMARY KEY,
	name text NOT NULL);
CREATE TABLE lk_custgroup (
	dataareaid varchar(4) NOT NULL,
	custgroup varchar(10) NOT NULL,
	description text,
	PRIMARY KEY (dataareaid, custgroup))`
	// lkCustTableDDL and lkAccountDDL are a customers table on each side,
	// by name: one for the initial sync, one for the catch-up.
	lkCustTableDDL = `CREATE TABLE %s (
	dataareaid varchar(4) NOT NULL,
	accountnum varchar(20) NOT NULL,
	name varchar(100) NOT NULL,
	amount numeric(19,4) NOT NULL,
	updated_at timestamp(6) NOT NULL,
	note text,
	currency varchar(3),
	custgroup varchar(10),
	invoiceaccount varchar(20),
	PRIMARY KEY (dataareaid, accountnum))`
	lkTargetDDL = `CREATE TABLE lk_transactioncurrency (
	transactioncurrencyid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	isocurrencycode varchar(3) NOT NULL UNIQUE,
	currencyname text);
CREATE TABLE lk_customergroup (
	customergroupid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	companycode varchar(4) NOT NULL,
	groupid varchar(10) NOT NULL,
	description text,
	UNIQUE (companycode, groupid))`
	lkAccountDDL = `CREATE TABLE %s (
	accountid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	companycode varchar(4) NOT NULL,
	accountnumber varchar(20) NOT NULL,
	name varchar(100),
	amount numeric(19,4),
	updated_at timestamp(6),
	note text,
	transactioncurrencyid uuid,
	customergroupid uuid,
	invoiceaccountid uuid,
	UNIQUE (companycode, accountnumber))`
)

// The maps of the lookups phase: the currencies and groups, and two
// customers maps of the same shape, one for the initial sync and one for
// the catch-up, each run by its own engine process so that each memory
// figure is its own.
const (
	lkCurrencies     = "lk_currencies"
	lkGroups         = "lk_groups"
	lkCustomers      = "lk_customers"
	lkCustomersQueue = "lk_customers_catchup"
)

var lkRelatedMaps = []tableMap{
	{name: lkCurrencies, body: `    left: lk_currency
    right: lk_transactioncurrency
    key: [{left: currencycode, right: isocurrencycode}]
    columns:
      - {left: currencycode, right: isocurrencycode}
      - {left: name, right: currencyname}
`},
	{name: lkGroups, body: `    left: lk_custgroup
    right: lk_customergroup
    key:
      - {left: dataareaid, right: companycode, company: true}
      - {left: custgroup, right: groupid}
    columns:
      - {left: dataareaid, right: companycode}
      - {left: custgroup, right: groupid}
      - {left: description, right: description}
`},
}

// lkCustomersMap is a customers map between the tables left and right,
// with its three lookups.
func lkCustomersMap(name, left, right string) tableMap {
	return tableMap{name: name, body: fmt.Sprintf(`    left: %s
    right: %s
    key:
      - {left: dataareaid, right: companycode, company: true}
      - {left: accountnum, right: accountnumber}
    columns:
      - {left: dataareaid, right: companycode}
      - {left: accountnum, right: accountnumber}
      - {left: name, right: name}
      - {left: amount, right: amount}
      - {left: updated_at, right: updated_at}
      - {left: note, right: note}
    lookups:
      - {map: lk_currencies, left: currency, right: transactioncurrencyid, right_ref: transactioncurrencyid}
      - {map: lk_groups, left: custgroup, right: customergroupid, right_ref: customergroupid}
      - {map: %s, left: invoiceaccount, left_ref: accountnum, right: invoiceaccountid, right_ref: accountid}
`, left, right, name)}
}

// lkCustomerInsert inserts customers first..last (row numbers): row i
// belongs to company i%3 with account number k = (i-1)/3+1, so each
// account number exists in all three companies. Accounts come in blocks
// of ten per company: the nine others name the block's first account as
// their invoice account (a reference within the company, often within
// the same initial sync chunk); the first has none, except one in a
// hundred blocks whose first account is its own invoice account. The
// currency and group follow i, so checkLookups can recompute them from
// the name.
const lkCustomerInsert = `INSERT INTO %s (dataareaid, accountnum, name, amount, updated_at, note, currency, custgroup, invoiceaccount)
	SELECT (ARRAY['usmf','demf','gbsi'])[i %% 3 + 1], 'C' || lpad(k::text, 9, '0'),
		'Customer ' || i, round((random() * 100000)::numeric, 4), timestamp '2024-01-01' + i * interval '1 second',
		'Note ' || repeat(md5(i::text), 3),
		(ARRAY['USD','EUR','GBP','JPY','CHF','CAD','AUD','SEK'])[i %% 8 + 1], ((i %% 5 + 1) * 10)::text,
		CASE WHEN k %% 10 <> 1 OR k %% 1000 = 1 THEN 'C' || lpad(((k - 1) / 10 * 10 + 1)::text, 9, '0') END
	FROM generate_series(%d, %d) AS i, LATERAL (SELECT (i - 1) / 3 + 1 AS k) AS a`

// fillLookupSource creates the lookups phase's tables on both sides and
// fills the source with the currencies, the groups of every company and
// rows customers in lk_custtable (lk_custtable_q stays empty).
func fillLookupSource(ctx context.Context, src, dst *sql.DB, rows int) error {
	if err := execAll(ctx, src, lkSourceDDL, fmt.Sprintf(lkCustTableDDL, "lk_custtable"), fmt.Sprintf(lkCustTableDDL, "lk_custtable_q")); err != nil {
		return fmt.Errorf("create the lookups tables: %w", err)
	}
	if err := execAll(ctx, dst, lkTargetDDL, fmt.Sprintf(lkAccountDDL, "lk_account"), fmt.Sprintf(lkAccountDDL, "lk_account_q")); err != nil {
		return fmt.Errorf("create the lookups tables: %w", err)
	}
	return execAll(ctx, src,
		`INSERT INTO lk_currency SELECT c, 'Currency ' || c FROM unnest(ARRAY['USD','EUR','GBP','JPY','CHF','CAD','AUD','SEK']) AS c`,
		`INSERT INTO lk_custgroup SELECT d, g::text, 'Group ' || g || ' of ' || d FROM unnest(ARRAY['usmf','demf','gbsi']) AS d, generate_series(10, 50, 10) AS g`,
		fmt.Sprintf(lkCustomerInsert, "lk_custtable", 1, rows),
		"VACUUM (ANALYZE) lk_custtable")
}

// checkLookups fails unless the target holds want accounts and each
// references, through the generated uuids, exactly the currency, the
// group of its own company and the invoice account of its own company
// that its source row names (recomputed from the row number in its
// name, as lkCustomerInsert made them).
func checkLookups(ctx context.Context, dst *sql.DB, table string, want int64) error {
	var n, wrong int64
	err := dst.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE
			c.isocurrencycode IS DISTINCT FROM (ARRAY['USD','EUR','GBP','JPY','CHF','CAD','AUD','SEK'])[x.i % 8 + 1]
			OR g.companycode IS DISTINCT FROM a.companycode OR g.groupid IS DISTINCT FROM ((x.i % 5 + 1) * 10)::text
			OR inv.companycode IS DISTINCT FROM (CASE WHEN x.k % 10 <> 1 OR x.k % 1000 = 1 THEN a.companycode END)
			OR inv.accountnumber IS DISTINCT FROM (CASE WHEN x.k % 10 <> 1 OR x.k % 1000 = 1 THEN 'C' || lpad(((x.k - 1) / 10 * 10 + 1)::text, 9, '0') END))
		FROM `+table+` a
		CROSS JOIN LATERAL (SELECT substr(a.name, 10)::bigint AS i, substr(a.accountnumber, 2)::bigint AS k) AS x
		LEFT JOIN lk_transactioncurrency c ON c.transactioncurrencyid = a.transactioncurrencyid
		LEFT JOIN lk_customergroup g ON g.customergroupid = a.customergroupid
		LEFT JOIN `+table+` inv ON inv.accountid = a.invoiceaccountid`).Scan(&n, &wrong)
	if err != nil {
		return fmt.Errorf("check the lookups on the target: %w", err)
	}
	if n != want || wrong != 0 {
		return fmt.Errorf("the target holds %d accounts, want %d; %d of them do not reference the currency, the group of their company or the invoice account of their company that their source row names", n, want, wrong)
	}
	return nil
}

// lookupsResult is what the lookups phase measured: times and the
// engine's peak memory (bytes) of each step.
type lookupsResult struct {
	init, replay, flatReplay             time.Duration
	initPeak, replayPeak, flatReplayPeak int64
	replayRows                           int64
}

// replaySize is the rows the catch-up phases queue, in ten source
// transactions: 100,000 at the default size, fewer for small runs.
func (b *bench) replaySize() (rows, perTx int) {
	rows = min(100_000, b.o.Rows)
	return rows, max(rows/10, 1)
}

// lookupsPhase times the initial sync of the customers map with three
// lookups at the full size, then, in a fresh engine, the catch-up replay
// of a flat map and of a customers map, each with the engine's peak memory
// during it.
func (b *bench) lookupsPhase(ctx context.Context, s *pgServer, left, right side, src, dst *sql.DB) (res lookupsResult, err error) {
	rows := int64(b.o.Rows)
	replayRows, perTx := b.replaySize()
	res.replayRows = int64(replayRows)
	b.logf("generating %d customers with three lookups in %s", rows, b.dbName("src"))
	if err := fillLookupSource(ctx, src, dst, b.o.Rows); err != nil {
		return res, err
	}
	if err := createPGTables(ctx, src, "replay"); err != nil {
		return res, err
	}
	if err := createPGTables(ctx, dst, "replay"); err != nil {
		return res, err
	}
	runAll := func(p *engineProc, names ...string) error {
		for _, m := range names {
			if err := p.run(ctx, m); err != nil {
				return err
			}
			if _, err := p.waitRunning(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}

	// Initial sync.
	p, err := b.startEngine(ctx, left, right, append(slices.Clone(lkRelatedMaps), lkCustomersMap(lkCustomers, "lk_custtable", "lk_account")))
	if err != nil {
		return res, err
	}
	if err := runAll(p, lkCurrencies, lkGroups); err != nil {
		return res, err
	}
	b.checkpoint(ctx, s)
	if err := p.resetPeakMemory(); err != nil {
		return res, err
	}
	if res.init, err = b.timeInitialSync(ctx, p, lkCustomers, dst, "lk_account", rows); err != nil {
		return res, err
	}
	if res.initPeak, err = p.peakMemory(); err != nil {
		return res, err
	}
	b.logf("initial sync %s: dualwrite %d rows in %s (%.0f rows/s), peak memory %.1f MiB", lkCustomers, rows, res.init.Round(time.Millisecond), rate(rows, res.init), mib(res.initPeak))
	if err := checkLookups(ctx, dst, "lk_account", rows); err != nil {
		return res, p.failed("initial sync of %s: %v", lkCustomers, err)
	}
	if err := p.stop(ctx); err != nil {
		return res, err
	}

	// Catch-up, in a fresh engine: the flat map first (the baseline),
	// then the customers.
	p, err = b.startEngine(ctx, left, right, append([]tableMap{{name: "replay", left: "replay", right: "replay"}},
		append(slices.Clone(lkRelatedMaps), lkCustomersMap(lkCustomersQueue, "lk_custtable_q", "lk_account_q"))...))
	if err != nil {
		return res, err
	}
	if err := runAll(p, lkCurrencies, lkGroups, "replay", lkCustomersQueue); err != nil {
		return res, err
	}
	flatInsert := func(first, last int) string {
		return fmt.Sprintf(`INSERT INTO replay (id, name, amount, updated_at, note)
			SELECT i, 'Customer ' || i, round((random() * 100000)::numeric, 4),
				timestamp '2024-01-01' + i * interval '1 second', 'Note ' || repeat(md5(i::text), 3)
			FROM generate_series(%d, %d) AS i`, first, last)
	}
	if res.flatReplay, res.flatReplayPeak, err = b.replay(ctx, s, p, "replay", src, dst, "replay", 0, replayRows, perTx, flatInsert); err != nil {
		return res, err
	}
	lkInsert := func(first, last int) string { return fmt.Sprintf(lkCustomerInsert, "lk_custtable_q", first, last) }
	if res.replay, res.replayPeak, err = b.replay(ctx, s, p, lkCustomersQueue, src, dst, "lk_account_q", 0, replayRows, perTx, lkInsert); err != nil {
		return res, err
	}
	if err := checkLookups(ctx, dst, "lk_account_q", int64(replayRows)); err != nil {
		return res, p.failed("catch-up replay of %s: %v", lkCustomersQueue, err)
	}
	return res, p.stop(ctx)
}

// replay pauses a Running map, writes rows after the first `before` rows
// into its source table in transactions of perTx rows (insert renders
// the statement of rows first..last), waits until every transaction is
// queued, then resumes the map and times it until the queue is replayed
// and the map Running. It returns that time and the engine's peak memory
// during it.
func (b *bench) replay(ctx context.Context, s *pgServer, p *engineProc, mapName string, src, dst *sql.DB, table string, before, rows, perTx int, insert func(first, last int) string) (time.Duration, int64, error) {
	if err := p.pause(ctx, mapName); err != nil {
		return 0, 0, err
	}
	txs := 0
	for first := before + 1; first <= before+rows; first += perTx {
		if _, err := src.ExecContext(ctx, insert(first, min(first+perTx-1, before+rows))); err != nil {
			return 0, 0, fmt.Errorf("catch-up %s: write rows from %d: %w", mapName, first, err)
		}
		txs++
	}
	// Capture queues the paused map's changes; the replay starts once
	// they are all there.
	if err := p.waitMap(ctx, mapName, "queue its transactions", func(v mapView) (bool, error) {
		return v.QueueDepth >= int64(txs), nil
	}); err != nil {
		return 0, 0, err
	}
	b.checkpoint(ctx, s)
	if err := p.resetPeakMemory(); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := p.run(ctx, mapName); err != nil {
		return 0, 0, err
	}
	if err := p.waitMap(ctx, mapName, "replay its queue", func(v mapView) (bool, error) {
		switch v.Status {
		case "Running":
			return true, nil
		case "Resuming":
			return false, nil
		}
		return false, fmt.Errorf("map %s went to %q during its catch-up (problems: %v)", mapName, v.Status, v.Problems)
	}); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	peak, err := p.peakMemory()
	if err != nil {
		return 0, 0, err
	}
	n, err := countRows(ctx, dst, table)
	if err != nil {
		return 0, 0, err
	}
	if v, _ := p.view(ctx, mapName); n != int64(before+rows) || v.CatchUpErrors != 0 {
		return 0, 0, p.failed("map %s is Running after its catch-up but the target %s holds %d rows, want %d (%d catch-up errors)", mapName, table, n, before+rows, v.CatchUpErrors)
	}
	b.logf("catch-up %s: %d rows in %d transactions replayed in %s (%.0f rows/s), peak memory %.1f MiB", mapName, rows, txs, elapsed.Round(time.Millisecond), rate(int64(rows), elapsed), mib(peak))
	return elapsed, peak, nil
}

// waitMap polls a map until done says so. It fails when done fails, when
// the engine exits, or when the map's queue and applied counts do not
// move for stallTimeout.
func (p *engineProc) waitMap(ctx context.Context, name, what string, done func(mapView) (bool, error)) error {
	last := ""
	lastMove := time.Now()
	for {
		v, err := p.view(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return p.failed("read map %s: %v", name, err)
		}
		ok, err := done(v)
		if err != nil {
			return p.failed("%v", err)
		}
		if ok {
			return nil
		}
		if now := fmt.Sprint(v.QueueDepth, v.Applied); now != last {
			last, lastMove = now, time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return p.failed("map %s did not %s: no progress for %s (status %s, queue depth %d)", name, what, stallTimeout, v.Status, v.QueueDepth)
		}
		select {
		case <-p.exited:
			return p.failed("the engine exited while map %s was to %s (%v)", name, what, p.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

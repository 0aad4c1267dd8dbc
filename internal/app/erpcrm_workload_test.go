package app_test

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// The writers of the model's randomized test. Each writer is an
// application on one side with its own random source (derived from the
// seed), so its script is the same on every run with that seed; only the
// interleaving with the other writers and the engine varies. A writer owns
// the rows it creates (keys carry its prefix) and keeps their expected
// state in business terms, the oracle; no one else writes them, so after
// convergence both sides must hold exactly the oracle. Shared customers
// (the S- accounts of the seed data) are edited by writers on both sides
// at once: for them only convergence is required.

// modelCompanies are the legal entities of the model.
var modelCompanies = []string{"usmf", "demf", "gbsi"}

// Seed data currencies and groups, never deleted: every writer may use them.
var (
	baseCurrencies = []string{"USD", "EUR", "GBP"}
	baseGroups     = []string{"10", "20"}
	sharedAccounts = []string{"S-01", "S-02", "S-03", "S-04"}
)

var modelTexts = []string{"plain", "O'Brien \"quoted\"", "Zürich — 😀 ünïcødé", `back\slash`, "tab\tand newline\n", strings.Repeat("long ", 200)}
var modelCredits = []any{nil, "0.0000", "12.3400", "-99999.9999", "123456789012345.1234", "0.0001"}
var modelTypes = []any{nil, "Organization", "Person"}

type custRec struct {
	name, currency, group, inv string // "" is NULL; group and inv in the row's own company
	credit, ctype              any
}

type lineRec struct {
	item  string
	qty   any
	cents int64
}

type orderRec struct {
	cust, currency string
	lines          map[int]lineRec
}

// modelWriter is one application writing on one side.
type modelWriter struct {
	t      *testing.T
	erp    bool
	prefix string
	db     *sql.DB
	driver string
	rng    *rand.Rand
	n      int // next fresh number
	// fixture: the test's own goroutine writes (fixtures), so a failed
	// statement ends the test at once.
	fixture bool

	currencies map[string]string // code → name
	groups     map[string]string // company/code → description
	customers  map[string]custRec
	orders     map[string]orderRec
	gone       map[string]string // table + " " + key of deleted rows
}

func newModelWriter(t *testing.T, side modelSide, erp bool, i int, seed uint64) *modelWriter {
	prefix := fmt.Sprintf("C%d", i)
	if erp {
		prefix = fmt.Sprintf("E%d", i)
	}
	s := seed + uint64(i)*7919
	if erp {
		s += 104729
	}
	return &modelWriter{t: t, erp: erp, prefix: prefix, db: side.db, driver: side.driver,
		rng:        rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
		currencies: map[string]string{}, groups: map[string]string{}, customers: map[string]custRec{},
		orders: map[string]orderRec{}, gone: map[string]string{}}
}

// fixtureWriter writes a test's fixed rows on one side.
func fixtureWriter(t *testing.T, side modelSide, erp bool) *modelWriter {
	return &modelWriter{t: t, erp: erp, prefix: "fixture", db: side.db, driver: side.driver, rng: rand.New(rand.NewPCG(1, 2)), fixture: true,
		currencies: map[string]string{}, groups: map[string]string{}, customers: map[string]custRec{}, orders: map[string]orderRec{}, gone: map[string]string{}}
}

func (w *modelWriter) fresh() string {
	w.n++
	return fmt.Sprintf("%s-%04d", w.prefix, w.n)
}

func (w *modelWriter) pick(list []string) string { return list[w.rng.IntN(len(list))] }

func pickAny[T any](rng *rand.Rand, list []T) T { return list[rng.IntN(len(list))] }

// keysOf returns the sorted keys of m, optionally only those in company c.
func keysOf[V any](m map[string]V, c string) []string {
	var out []string
	for k := range m {
		if c == "" || strings.HasPrefix(k, c+"/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func splitKey(k string) (string, string) {
	c, rest, _ := strings.Cut(k, "/")
	return c, rest
}

// randomCustomer draws a customer of company c referencing only rows that
// cannot disappear under it: seed data and the writer's own rows.
func (w *modelWriter) randomCustomer(c, acct string) custRec {
	r := custRec{name: w.pick(modelTexts), credit: pickAny(w.rng, modelCredits), ctype: pickAny(w.rng, modelTypes)}
	switch x := w.rng.IntN(10); {
	case x < 2:
	case x < 5 && len(w.currencies) > 0:
		r.currency = w.pick(keysOf(w.currencies, ""))
	default:
		r.currency = w.pick(baseCurrencies)
	}
	own := keysOf(w.groups, c)
	switch x := w.rng.IntN(10); {
	case x < 2:
	case x < 6 && len(own) > 0:
		_, r.group = splitKey(w.pick(own))
	default:
		r.group = w.pick(baseGroups)
	}
	mates := keysOf(w.customers, c)
	switch x := w.rng.IntN(10); {
	case x < 4:
	case x < 5:
		r.inv = acct // a self-reference
	case len(mates) > 0:
		_, r.inv = splitKey(w.pick(mates))
	}
	return r
}

// step runs one random operation. Each operation is one transaction, or
// two where the model asks for "created, then referenced in the next".
func (w *modelWriter) step() {
	c := w.pick(modelCompanies)
	switch x := w.rng.IntN(100); {
	case x < 8: // a new currency referenced in the same transaction
		code := "X" + w.fresh()
		acct := w.fresh()
		cust := w.randomCustomer(c, acct)
		cust.currency = code
		name := w.pick(modelTexts)
		w.tx(func(tx *sql.Tx) error {
			if err := w.putCurrency(tx, code, name); err != nil {
				return err
			}
			return w.putCustomers(tx, c, []string{acct}, []custRec{cust}, true)
		})
		w.currencies[code] = name
		w.customers[c+"/"+acct] = cust
	case x < 14: // a new group referenced in the next transaction; sometimes the same code in a second company
		code := "G" + w.fresh()
		desc := w.pick(modelTexts)
		w.tx(func(tx *sql.Tx) error { return w.putGroup(tx, c, code, desc) })
		w.groups[c+"/"+code] = desc
		if w.rng.IntN(2) == 0 {
			c2 := w.pick(modelCompanies)
			if c2 != c {
				w.tx(func(tx *sql.Tx) error { return w.putGroup(tx, c2, code, "other "+desc) })
				w.groups[c2+"/"+code] = "other " + desc
			}
		}
		acct := w.fresh()
		cust := w.randomCustomer(c, acct)
		cust.group = code
		w.tx(func(tx *sql.Tx) error { return w.putCustomers(tx, c, []string{acct}, []custRec{cust}, true) })
		w.customers[c+"/"+acct] = cust
	case x < 24: // a new customer; sometimes an account number the writer already uses in another company
		acct := w.fresh()
		for _, k := range keysOf(w.customers, "") {
			if kc, ka := splitKey(k); kc != c && w.rng.IntN(4) == 0 {
				if _, taken := w.customers[c+"/"+ka]; !taken && w.gone["customers "+c+"/"+ka] == "" {
					acct = ka
				}
				break
			}
		}
		cust := w.randomCustomer(c, acct)
		w.tx(func(tx *sql.Tx) error { return w.putCustomers(tx, c, []string{acct}, []custRec{cust}, true) })
		w.customers[c+"/"+acct] = cust
	case x < 29: // an invoice-account chain, or a mutual pair, in one transaction
		n := 2
		if x < 27 {
			n = 3 + w.rng.IntN(4)
		}
		accts := make([]string, n)
		custs := make([]custRec, n)
		for i := range accts {
			accts[i] = w.fresh()
		}
		for i := range accts {
			custs[i] = w.randomCustomer(c, accts[i])
			if i > 0 {
				custs[i].inv = accts[i-1]
			}
		}
		custs[0].inv = accts[n-1] // closes the cycle (a self-reference when n is 1)
		if n > 2 && w.rng.IntN(2) == 0 {
			custs[0].inv = "" // an open chain
		}
		w.tx(func(tx *sql.Tx) error { return w.putCustomers(tx, c, accts, custs, true) })
		for i := range accts {
			w.customers[c+"/"+accts[i]] = custs[i]
		}
	case x < 47: // edit an own customer
		ks := keysOf(w.customers, "")
		if len(ks) == 0 {
			return
		}
		k := w.pick(ks)
		kc, ka := splitKey(k)
		cust := w.randomCustomer(kc, ka)
		w.tx(func(tx *sql.Tx) error { return w.putCustomers(tx, kc, []string{ka}, []custRec{cust}, false) })
		w.customers[k] = cust
	case x < 51: // a key change on the ERP, references following in the same transaction
		if w.erp {
			w.renameCustomer()
		}
	case x < 56:
		w.deleteCustomer()
	case x < 58:
		w.deleteGroupOrCurrency()
	case x < 70:
		w.newOrder(c)
	case x < 78:
		w.editOrder()
	case x < 81:
		w.deleteOrder()
	default: // a concurrent edit of a shared customer, on both sides at once
		acct := w.pick(sharedAccounts)
		r := custRec{name: w.pick(modelTexts), credit: pickAny(w.rng, modelCredits), ctype: pickAny(w.rng, modelTypes),
			currency: w.pick(baseCurrencies), group: w.pick(baseGroups)}
		if w.rng.IntN(2) == 0 {
			r.inv = w.pick(sharedAccounts)
		}
		w.tx(func(tx *sql.Tx) error { return w.putCustomers(tx, c, []string{acct}, []custRec{r}, false) })
	}
}

func (w *modelWriter) renameCustomer() {
	ks := keysOf(w.customers, "")
	if len(ks) == 0 {
		return
	}
	k := w.pick(ks)
	c, old := splitKey(k)
	acct := w.fresh()
	w.tx(func(tx *sql.Tx) error {
		if _, err := tx.Exec(w.q(`UPDATE custtable SET accountnum = ? WHERE dataareaid = ? AND accountnum = ?`), acct, c, old); err != nil {
			return err
		}
		if _, err := tx.Exec(w.q(`UPDATE custtable SET invoiceaccount = ? WHERE dataareaid = ? AND invoiceaccount = ?`), acct, c, old); err != nil {
			return err
		}
		_, err := tx.Exec(w.q(`UPDATE salestable SET custaccount = ? WHERE dataareaid = ? AND custaccount = ?`), acct, c, old)
		return err
	})
	cust := w.customers[k]
	delete(w.customers, k)
	w.gone["customers "+k] = "renamed"
	w.customers[c+"/"+acct] = cust
	for kk, r := range w.customers {
		if kc, _ := splitKey(kk); kc == c && r.inv == old {
			r.inv = acct
			w.customers[kk] = r
		}
	}
	for kk, o := range w.orders {
		if kc, _ := splitKey(kk); kc == c && o.cust == old {
			o.cust = acct
			w.orders[kk] = o
		}
	}
}

// deleteCustomer deletes an own customer after its references are
// cleared: its orders deleted and other customers' invoice accounts
// emptied, in the same transaction or the one before.
func (w *modelWriter) deleteCustomer() {
	ks := keysOf(w.customers, "")
	if len(ks) == 0 {
		return
	}
	k := w.pick(ks)
	c, acct := splitKey(k)
	var referers, referersAccts []string
	var refRecs []custRec
	for _, kk := range keysOf(w.customers, c) {
		if _, a := splitKey(kk); a != acct && w.customers[kk].inv == acct {
			r := w.customers[kk]
			r.inv = ""
			referers, referersAccts, refRecs = append(referers, kk), append(referersAccts, a), append(refRecs, r)
		}
	}
	var orders []string
	for _, ok := range keysOf(w.orders, c) {
		if w.orders[ok].cust == acct {
			orders = append(orders, ok)
		}
	}
	clear := func(tx *sql.Tx) error {
		for _, o := range orders {
			if err := w.removeOrder(tx, o); err != nil {
				return err
			}
		}
		if len(referersAccts) == 0 {
			return nil
		}
		return w.putCustomers(tx, c, referersAccts, refRecs, false)
	}
	del := func(tx *sql.Tx) error {
		if w.erp {
			_, err := tx.Exec(w.q(`DELETE FROM custtable WHERE dataareaid = ? AND accountnum = ?`), c, acct)
			return err
		}
		_, err := tx.Exec(w.q(`DELETE FROM account WHERE accountnumber = ? AND msdyn_company = (SELECT cdm_companyid FROM cdm_company WHERE cdm_companycode = ?)`), acct, c)
		return err
	}
	if w.rng.IntN(2) == 0 {
		w.tx(clear)
		w.tx(del)
	} else {
		w.tx(func(tx *sql.Tx) error {
			if err := clear(tx); err != nil {
				return err
			}
			return del(tx)
		})
	}
	for i, kk := range referers {
		w.customers[kk] = refRecs[i]
	}
	for _, o := range orders {
		w.forgetOrder(o)
	}
	delete(w.customers, k)
	w.gone["customers "+k] = "deleted"
}

// deleteGroupOrCurrency deletes an own group or currency after moving its
// customers and orders off it.
func (w *modelWriter) deleteGroupOrCurrency() {
	if w.rng.IntN(2) == 0 && len(w.groups) > 0 {
		k := w.pick(keysOf(w.groups, ""))
		c, code := splitKey(k)
		var accts []string
		var recs []custRec
		for _, kk := range keysOf(w.customers, c) {
			if r := w.customers[kk]; r.group == code {
				r.group = w.pick(baseGroups)
				_, a := splitKey(kk)
				accts, recs = append(accts, a), append(recs, r)
			}
		}
		w.tx(func(tx *sql.Tx) error {
			if len(accts) > 0 {
				if err := w.putCustomers(tx, c, accts, recs, false); err != nil {
					return err
				}
			}
			if w.erp {
				_, err := tx.Exec(w.q(`DELETE FROM custgroup WHERE dataareaid = ? AND custgroup = ?`), c, code)
				return err
			}
			_, err := tx.Exec(w.q(`DELETE FROM msdyn_customergroup WHERE msdyn_groupid = ? AND msdyn_company = (SELECT cdm_companyid FROM cdm_company WHERE cdm_companycode = ?)`), code, c)
			return err
		})
		for i, a := range accts {
			w.customers[c+"/"+a] = recs[i]
		}
		delete(w.groups, k)
		w.gone["groups "+k] = "deleted"
		return
	}
	if len(w.currencies) == 0 {
		return
	}
	code := w.pick(keysOf(w.currencies, ""))
	// Clear the references in one transaction, delete in the next.
	byCompany := map[string][]string{}
	recs := map[string][]custRec{}
	for _, kk := range keysOf(w.customers, "") {
		if r := w.customers[kk]; r.currency == code {
			c, a := splitKey(kk)
			r.currency = ""
			byCompany[c] = append(byCompany[c], a)
			recs[c] = append(recs[c], r)
		}
	}
	var orders []string
	for _, ok := range keysOf(w.orders, "") {
		if w.orders[ok].currency == code {
			orders = append(orders, ok)
		}
	}
	w.tx(func(tx *sql.Tx) error {
		for _, c := range modelCompanies {
			if len(byCompany[c]) > 0 {
				if err := w.putCustomers(tx, c, byCompany[c], recs[c], false); err != nil {
					return err
				}
			}
		}
		for _, o := range orders {
			oc, id := splitKey(o)
			rec := w.orders[o]
			rec.currency = ""
			if err := w.putOrder(tx, oc, id, rec, nil, false); err != nil {
				return err
			}
		}
		return nil
	})
	for c, accts := range byCompany {
		for i, a := range accts {
			w.customers[c+"/"+a] = recs[c][i]
		}
	}
	for _, o := range orders {
		rec := w.orders[o]
		rec.currency = ""
		w.orders[o] = rec
	}
	w.tx(func(tx *sql.Tx) error {
		if w.erp {
			_, err := tx.Exec(w.q(`DELETE FROM currencies WHERE currencycode = ?`), code)
			return err
		}
		_, err := tx.Exec(w.q(`DELETE FROM transactioncurrency WHERE isocurrencycode = ?`), code)
		return err
	})
	delete(w.currencies, code)
	w.gone["currencies "+code] = "deleted"
}

// newOrder writes an order and its lines in one transaction, its total
// the sum of the lines.
func (w *modelWriter) newOrder(c string) {
	custs := keysOf(w.customers, c)
	if len(custs) == 0 {
		return
	}
	_, cust := splitKey(w.pick(custs))
	id := "SO" + w.fresh()
	o := orderRec{cust: cust, currency: w.pick(baseCurrencies), lines: map[int]lineRec{}}
	if w.rng.IntN(4) == 0 && len(w.currencies) > 0 {
		o.currency = w.pick(keysOf(w.currencies, ""))
	}
	for i := 1; i <= 1+w.rng.IntN(4); i++ {
		o.lines[i] = w.randomLine()
	}
	w.tx(func(tx *sql.Tx) error { return w.putOrder(tx, c, id, o, keysOfLines(o.lines), true) })
	w.orders[c+"/"+id] = o
}

func (w *modelWriter) randomLine() lineRec {
	cents := w.rng.Int64N(10_000_000)
	if w.rng.IntN(10) == 0 {
		cents = w.rng.Int64N(1_000_000_000_000_00) // amounts in the hundreds of billions
	}
	return lineRec{item: w.pick([]string{"widget", "gadget", "Größe 😀", "O'Ring"}), qty: pickAny(w.rng, []any{nil, "1", "2.5000", "0.0001", "1000"}), cents: cents}
}

func keysOfLines(m map[int]lineRec) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// editOrder changes, adds or removes lines of an own order and updates
// its total, in one transaction.
func (w *modelWriter) editOrder() {
	ks := keysOf(w.orders, "")
	if len(ks) == 0 {
		return
	}
	k := w.pick(ks)
	c, id := splitKey(k)
	old := w.orders[k]
	o := orderRec{cust: old.cust, currency: old.currency, lines: map[int]lineRec{}}
	for n, l := range old.lines {
		o.lines[n] = l
	}
	nums := keysOfLines(o.lines)
	var touched []int
	switch x := w.rng.IntN(3); {
	case x == 0 || len(nums) < 2:
		n := nums[len(nums)-1] + 1
		o.lines[n] = w.randomLine()
		touched = append(touched, n)
	case x == 1:
		n := pickAny(w.rng, nums)
		delete(o.lines, n)
		touched = append(touched, n)
	default:
		for _, n := range nums {
			if w.rng.IntN(2) == 0 {
				o.lines[n] = w.randomLine()
				touched = append(touched, n)
			}
		}
	}
	w.tx(func(tx *sql.Tx) error { return w.putOrder(tx, c, id, o, touched, false) })
	w.orders[k] = o
}

func (w *modelWriter) deleteOrder() {
	ks := keysOf(w.orders, "")
	if len(ks) == 0 {
		return
	}
	k := w.pick(ks)
	w.tx(func(tx *sql.Tx) error { return w.removeOrder(tx, k) })
	w.forgetOrder(k)
}

func (w *modelWriter) forgetOrder(k string) {
	for n := range w.orders[k].lines {
		w.gone[fmt.Sprintf("lines %s/%d", k, n)] = "deleted"
	}
	delete(w.orders, k)
	w.gone["orders "+k] = "deleted"
}

// tx runs fn in one transaction, again from the start when the database
// chose it as a deadlock victim or was busy, as applications do.
func (w *modelWriter) tx(fn func(tx *sql.Tx) error) {
	w.t.Helper()
	for attempt := 1; ; attempt++ {
		tx, err := w.db.Begin()
		if err == nil {
			if err = fn(tx); err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
		}
		if err == nil {
			return
		}
		if transient(err) && attempt < 50 {
			time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
			continue
		}
		if w.fixture {
			w.t.Fatalf("%s: %v", w.prefix, err)
		}
		w.t.Errorf("writer %s: %v", w.prefix, err)
		panic(errWriterFailed)
	}
}

var errWriterFailed = errors.New("writer failed")

// transient reports a deadlock, a lock timeout or a busy database: the
// application retries the transaction.
func transient(err error) bool {
	var me *gomysql.MySQLError
	if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
		return true
	}
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}

func (w *modelWriter) q(s string) string { return dialect(w.db, s) }

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (w *modelWriter) putCurrency(tx *sql.Tx, code, name string) error {
	if w.erp {
		_, err := tx.Exec(w.q(`INSERT INTO currencies (currencycode, name, symbol) VALUES (?, ?, ?)`), code, name, "¤")
		return err
	}
	_, err := tx.Exec(w.q(`INSERT INTO transactioncurrency (isocurrencycode, currencyname, currencysymbol) VALUES (?, ?, ?)`), code, name, "¤")
	return err
}

func (w *modelWriter) putGroup(tx *sql.Tx, c, code, desc string) error {
	if w.erp {
		_, err := tx.Exec(w.q(`INSERT INTO custgroup (dataareaid, custgroup, description) VALUES (?, ?, ?)`), c, code, desc)
		return err
	}
	_, err := tx.Exec(w.q(`INSERT INTO msdyn_customergroup (msdyn_company, msdyn_groupid, msdyn_description)
		SELECT cdm_companyid, ?, ? FROM cdm_company WHERE cdm_companycode = ?`), code, desc, c)
	return err
}

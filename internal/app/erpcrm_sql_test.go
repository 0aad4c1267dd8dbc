package app_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The statements of the model's applications: the ERP writes natural
// keys, the CRM resolves every reference to its uuid first, as a CRM
// application does.

// crmID returns the uuid of the CRM row that q finds, "" when none.
func crmID(tx queryRower, db *sql.DB, q string, args ...any) (string, error) {
	var id sql.NullString
	err := tx.QueryRow(dialect(db, q), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id.String, err
}

type queryRower interface {
	QueryRow(q string, args ...any) *sql.Row
}

func crmCompanyID(tx queryRower, db *sql.DB, c string) (string, error) {
	return crmID(tx, db, `SELECT cdm_companyid FROM cdm_company WHERE cdm_companycode = ?`, c)
}

func crmAccountID(tx queryRower, db *sql.DB, c, acct string) (string, error) {
	return crmID(tx, db, `SELECT a.accountid FROM account a JOIN cdm_company c ON c.cdm_companyid = a.msdyn_company
		WHERE c.cdm_companycode = ? AND a.accountnumber = ?`, c, acct)
}

func crmOrderID(tx queryRower, db *sql.DB, c, id string) (string, error) {
	return crmID(tx, db, `SELECT o.salesorderid FROM salesorder o JOIN cdm_company c ON c.cdm_companyid = o.msdyn_company
		WHERE c.cdm_companycode = ? AND o.ordernumber = ?`, c, id)
}

func typeCode(v any) any {
	switch v {
	case "Organization":
		return 1
	case "Person":
		return 2
	}
	return nil
}

// putCustomers inserts (insert) or updates the customers accts of company
// c. On the CRM a batch is inserted with the invoice accounts unset and
// then set, so chains and cycles can be written in one transaction.
func (w *modelWriter) putCustomers(tx *sql.Tx, c string, accts []string, recs []custRec, insert bool) error {
	if w.erp {
		for i, a := range accts {
			r := recs[i]
			q := `UPDATE custtable SET name = ?, currency = ?, custgroup = ?, invoiceaccount = ?, creditlimit = ?, custtype = ? WHERE dataareaid = ? AND accountnum = ?`
			if insert {
				q = `INSERT INTO custtable (name, currency, custgroup, invoiceaccount, creditlimit, custtype, dataareaid, accountnum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
			}
			if _, err := tx.Exec(w.q(q), r.name, orNull(r.currency), orNull(r.group), orNull(r.inv), r.credit, r.ctype, c, a); err != nil {
				return err
			}
		}
		return nil
	}
	company, err := crmCompanyID(tx, w.db, c)
	if err != nil {
		return err
	}
	ids := make([]string, len(accts))
	for i, a := range accts {
		r := recs[i]
		cur, err := crmID(tx, w.db, `SELECT transactioncurrencyid FROM transactioncurrency WHERE isocurrencycode = ?`, r.currency)
		if err != nil {
			return err
		}
		grp, err := crmID(tx, w.db, `SELECT msdyn_customergroupid FROM msdyn_customergroup WHERE msdyn_company = ? AND msdyn_groupid = ?`, company, r.group)
		if err != nil {
			return err
		}
		rating := 1 + w.rng.IntN(5)
		if insert {
			if _, err := tx.Exec(w.q(`INSERT INTO account (msdyn_company, accountnumber, name, transactioncurrencyid, msdyn_customergroupid, creditlimit, customertypecode, crm_only_rating)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), company, a, r.name, orNull(cur), orNull(grp), r.credit, typeCode(r.ctype), rating); err != nil {
				return err
			}
		}
		if ids[i], err = crmAccountID(tx, w.db, c, a); err != nil {
			return err
		}
		if ids[i] == "" {
			return nil // a shared customer the engine has not brought (yet): nothing to edit
		}
		if !insert {
			if _, err := tx.Exec(w.q(`UPDATE account SET name = ?, transactioncurrencyid = ?, msdyn_customergroupid = ?, creditlimit = ?, customertypecode = ?, crm_only_rating = ? WHERE accountid = ?`),
				r.name, orNull(cur), orNull(grp), r.credit, typeCode(r.ctype), rating, ids[i]); err != nil {
				return err
			}
		}
	}
	for i, a := range accts {
		inv := ""
		if recs[i].inv != "" {
			var err error
			if inv, err = crmAccountID(tx, w.db, c, recs[i].inv); err != nil {
				return err
			}
		}
		if insert && inv == "" {
			continue
		}
		if _, err := tx.Exec(w.q(`UPDATE account SET msdyn_invoiceaccount = ? WHERE accountid = ?`), orNull(inv), ids[i]); err != nil {
			return fmt.Errorf("set invoice account of %s: %w", a, err)
		}
	}
	return nil
}

func centsText(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

func (o orderRec) total() int64 {
	var t int64
	for _, l := range o.lines {
		t += l.cents
	}
	return t
}

// putOrder writes order id of company c with its total, and the lines
// touched: inserted, updated or deleted as o has them against the order
// as the writer last wrote it.
func (w *modelWriter) putOrder(tx *sql.Tx, c, id string, o orderRec, touched []int, insert bool) error {
	old := w.orders[c+"/"+id]
	total := centsText(o.total())
	if w.erp {
		q := `UPDATE salestable SET custaccount = ?, currency = ?, total = ? WHERE dataareaid = ? AND salesid = ?`
		if insert {
			q = `INSERT INTO salestable (custaccount, currency, total, dataareaid, salesid) VALUES (?, ?, ?, ?, ?)`
		}
		if _, err := tx.Exec(w.q(q), o.cust, orNull(o.currency), total, c, id); err != nil {
			return err
		}
		for _, n := range touched {
			l, now := o.lines[n]
			_, was := old.lines[n]
			var err error
			switch {
			case now && was:
				_, err = tx.Exec(w.q(`UPDATE salesline SET itemid = ?, qty = ?, lineamount = ? WHERE dataareaid = ? AND salesid = ? AND linenum = ?`), l.item, l.qty, centsText(l.cents), c, id, n)
			case now:
				_, err = tx.Exec(w.q(`INSERT INTO salesline (itemid, qty, lineamount, dataareaid, salesid, linenum) VALUES (?, ?, ?, ?, ?, ?)`), l.item, l.qty, centsText(l.cents), c, id, n)
			case was:
				_, err = tx.Exec(w.q(`DELETE FROM salesline WHERE dataareaid = ? AND salesid = ? AND linenum = ?`), c, id, n)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	company, err := crmCompanyID(tx, w.db, c)
	if err != nil {
		return err
	}
	cust, err := crmAccountID(tx, w.db, c, o.cust)
	if err != nil {
		return err
	}
	cur, err := crmID(tx, w.db, `SELECT transactioncurrencyid FROM transactioncurrency WHERE isocurrencycode = ?`, o.currency)
	if err != nil {
		return err
	}
	if insert {
		_, err = tx.Exec(w.q(`INSERT INTO salesorder (msdyn_company, ordernumber, customerid, transactioncurrencyid, totalamount) VALUES (?, ?, ?, ?, ?)`), company, id, orNull(cust), orNull(cur), total)
	} else {
		_, err = tx.Exec(w.q(`UPDATE salesorder SET customerid = ?, transactioncurrencyid = ?, totalamount = ? WHERE msdyn_company = ? AND ordernumber = ?`), orNull(cust), orNull(cur), total, company, id)
	}
	if err != nil {
		return err
	}
	oid, err := crmOrderID(tx, w.db, c, id)
	if err != nil {
		return err
	}
	for _, n := range touched {
		l, now := o.lines[n]
		_, was := old.lines[n]
		switch {
		case now && was:
			_, err = tx.Exec(w.q(`UPDATE salesorderdetail SET productname = ?, quantity = ?, amount = ? WHERE salesorderid = ? AND linenumber = ?`), l.item, l.qty, centsText(l.cents), oid, n)
		case now:
			_, err = tx.Exec(w.q(`INSERT INTO salesorderdetail (productname, quantity, amount, salesorderid, linenumber) VALUES (?, ?, ?, ?, ?)`), l.item, l.qty, centsText(l.cents), oid, n)
		case was:
			_, err = tx.Exec(w.q(`DELETE FROM salesorderdetail WHERE salesorderid = ? AND linenumber = ?`), oid, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// removeOrder deletes an order and its lines.
func (w *modelWriter) removeOrder(tx *sql.Tx, k string) error {
	c, id := splitKey(k)
	if w.erp {
		if _, err := tx.Exec(w.q(`DELETE FROM salesline WHERE dataareaid = ? AND salesid = ?`), c, id); err != nil {
			return err
		}
		_, err := tx.Exec(w.q(`DELETE FROM salestable WHERE dataareaid = ? AND salesid = ?`), c, id)
		return err
	}
	oid, err := crmOrderID(tx, w.db, c, id)
	if err != nil || oid == "" {
		return err
	}
	if _, err := tx.Exec(w.q(`DELETE FROM salesorderdetail WHERE salesorderid = ?`), oid); err != nil {
		return err
	}
	_, err = tx.Exec(w.q(`DELETE FROM salesorder WHERE salesorderid = ?`), oid)
	return err
}

// expected is the writer's oracle in the dumps' business terms.
func (w *modelWriter) expected() modelDump {
	dec := func(v any) string {
		if v == nil {
			return "∅"
		}
		return trimDecimal(sql.NullString{String: v.(string), Valid: true}).String
	}
	ref := func(c, k string) string {
		if k == "" {
			return "∅"
		}
		return c + "/" + k
	}
	str := func(s string) string {
		if s == "" {
			return "∅"
		}
		return s
	}
	d := modelDump{"currencies": {}, "groups": {}, "customers": {}, "orders": {}, "lines": {}}
	for code, name := range w.currencies {
		d["currencies"][code] = name + "|¤"
	}
	for k, desc := range w.groups {
		d["groups"][k] = desc
	}
	for k, r := range w.customers {
		c, _ := splitKey(k)
		ct := "∅"
		if r.ctype != nil {
			ct = r.ctype.(string)
		}
		d["customers"][k] = strings.Join([]string{r.name, str(r.currency), ref(c, r.group), ref(c, r.inv), dec(r.credit), ct}, "|")
	}
	for k, o := range w.orders {
		c, _ := splitKey(k)
		d["orders"][k] = strings.Join([]string{ref(c, o.cust), str(o.currency), dec(centsText(o.total()))}, "|")
		for n, l := range o.lines {
			d["lines"][fmt.Sprintf("%s/%d", k, n)] = strings.Join([]string{l.item, dec(l.qty), dec(centsText(l.cents))}, "|")
		}
	}
	return d
}

// checkOracle requires every row the writer wrote, as it last wrote it, on
// the side dump, and none of the rows it deleted.
func (w *modelWriter) checkOracle(t *testing.T, side string, got modelDump) int {
	t.Helper()
	bad := 0
	for table, rows := range w.expected() {
		for k, want := range rows {
			if g, ok := got[table][k]; !ok || g != want {
				if bad < 10 {
					t.Errorf("writer %s, %s %s on the %s: %.120q, want %.120q (a change was lost)", w.prefix, table, k, side, g, want)
				}
				bad++
			}
		}
	}
	for tk, why := range w.gone {
		table, k, _ := strings.Cut(tk, " ")
		if _, back := w.expected()[table][k]; back {
			continue // deleted, then written again
		}
		if g, ok := got[table][k]; ok {
			if bad < 10 {
				t.Errorf("writer %s, %s %s (%s) is still on the %s: %.120q", w.prefix, table, k, why, side, g)
			}
			bad++
		}
	}
	return bad
}

package app_test

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestModelOrdersAreAtomicAcrossMaps: while each side writes orders with
// their lines and totals (total = sum of the lines) in single
// transactions, a reader on the other side polling in single snapshots
// never sees an order whose lines do not add up to its total, nor lines
// without their order. Orders and lines are two maps; one source
// transaction must become one target transaction across them.
func TestModelOrdersAreAtomicAcrossMaps(t *testing.T) {
	if !*modelEnabled {
		t.Skip("the cross-map atomicity test runs with -dw.model (it does not pass yet; docs/TESTING.md)")
	}
	for _, right := range []string{"postgres", "mysql"} {
		t.Run("postgres-"+right, func(t *testing.T) {
			erp, crm := modelPair(t, "postgres", right)
			mustExecAll(t, erp.db,
				`INSERT INTO companies VALUES ('usmf', 'Contoso USA')`,
				`INSERT INTO currencies VALUES ('USD', 'US Dollar', '$'), ('EUR', 'Euro', '€'), ('GBP', 'Pound', '£')`,
				`INSERT INTO custtable (dataareaid, accountnum, name) VALUES ('usmf', 'K-1', 'Orders customer')`)
			m := startModel(t, erp, crm, modelOrder)
			m.runAll()
			m.waitModelEqual("initial sync", 30*time.Second)

			stop := make(chan struct{})
			var stopOnce sync.Once
			stopReaders := func() { stopOnce.Do(func() { close(stop) }) }
			readers := []*snapshotReader{{side: "erp", db: erp.db, q: erpOrderSums, remote: "SOC"}, {side: "crm", db: crm.db, q: crmOrderSums, remote: "SOE"}}
			var rg sync.WaitGroup
			for _, r := range readers {
				rg.Add(1)
				go func() { defer rg.Done(); r.run(t, stop) }()
			}
			defer rg.Wait()
			defer stopReaders()
			var wg sync.WaitGroup
			for i, side := range []modelSide{erp, crm} {
				w := newModelWriter(t, side, i == 0, 0, 20261204)
				w.customers["usmf/K-1"] = custRec{name: "Orders customer"}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() {
						if r := recover(); r != nil && r != errWriterFailed {
							panic(r)
						}
					}()
					for n := 0; n < 150; n++ {
						switch x := w.rng.IntN(10); {
						case x < 4:
							w.newOrder("usmf")
						case x < 9:
							w.editOrder()
						default:
							w.deleteOrder()
						}
						time.Sleep(time.Duration(5+w.rng.IntN(15)) * time.Millisecond)
					}
				}()
			}
			wg.Wait()
			_, converged := m.tryModelEqual("after the writes", 60*time.Second)
			stopReaders()
			rg.Wait()
			for _, r := range readers {
				t.Logf("%s reader: %d snapshots, %d orders of the other side seen, %d torn", r.side, r.polls.Load(), r.seen.Load(), r.torn.Load())
				if r.seen.Load() == 0 {
					t.Errorf("the %s reader never saw an order of the other side: nothing was checked", r.side)
				}
				if n := r.torn.Load(); n > 0 {
					t.Errorf("the %s reader saw %d torn snapshots, e.g.:\n%s", r.side, n, r.samples())
				}
			}
			if converged != "" {
				t.Fatal(converged)
			}
		})
	}
}

// The readers' single statements: per order its total, the sum and count
// of its lines; and lines whose order is not there (order number NULL).
const erpOrderSums = `SELECT o.salesid, o.total, COALESCE(SUM(l.lineamount), 0), COUNT(l.linenum) FROM salestable o
	LEFT JOIN salesline l ON l.dataareaid = o.dataareaid AND l.salesid = o.salesid GROUP BY o.dataareaid, o.salesid, o.total
	UNION ALL SELECT NULL, NULL, SUM(l.lineamount), COUNT(*) FROM salesline l
	WHERE NOT EXISTS (SELECT 1 FROM salestable o WHERE o.dataareaid = l.dataareaid AND o.salesid = l.salesid) HAVING COUNT(*) > 0`

const crmOrderSums = `SELECT o.ordernumber, o.totalamount, COALESCE(SUM(d.amount), 0), COUNT(d.linenumber) FROM salesorder o
	LEFT JOIN salesorderdetail d ON d.salesorderid = o.salesorderid GROUP BY o.salesorderid, o.ordernumber, o.totalamount
	UNION ALL SELECT NULL, NULL, SUM(d.amount), COUNT(*) FROM salesorderdetail d
	WHERE NOT EXISTS (SELECT 1 FROM salesorder o WHERE o.salesorderid = d.salesorderid) HAVING COUNT(*) > 0`

// snapshotReader polls one side with a single statement (one snapshot)
// and counts the snapshots in which an order's lines do not add up to its
// total or lines have no order.
type snapshotReader struct {
	side              string
	db                *sql.DB
	q                 string
	remote            string // prefix of the order numbers the other side writes
	polls, seen, torn atomic.Int64
	mu                sync.Mutex
	examples          []string
}

func (r *snapshotReader) run(t *testing.T, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		rows, err := r.db.Query(r.q)
		if err != nil {
			t.Errorf("%s reader: %v", r.side, err)
			return
		}
		torn := false
		for rows.Next() {
			var id, total, sum sql.NullString
			var n int
			if err := rows.Scan(&id, &total, &sum, &n); err != nil {
				t.Errorf("%s reader: %v", r.side, err)
				rows.Close()
				return
			}
			if strings.HasPrefix(id.String, r.remote) {
				r.seen.Add(1)
			}
			bad := ""
			switch {
			case !id.Valid:
				bad = fmt.Sprintf("%d lines without their order", n)
			case trimDecimal(total) != trimDecimal(sum):
				bad = fmt.Sprintf("order %s: total %s, its %d lines sum to %s", id.String, total.String, n, sum.String)
			}
			if bad != "" {
				torn = true
				r.mu.Lock()
				if len(r.examples) < 5 {
					r.examples = append(r.examples, bad)
				}
				r.mu.Unlock()
			}
		}
		rows.Close()
		r.polls.Add(1)
		if torn {
			r.torn.Add(1)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *snapshotReader) samples() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.examples)
}

package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// liveTable is a table of a live phase on one side: the writers insert
// into the source's, the arrivals are read from the target's.
type liveTable struct {
	db     *sql.DB
	driver string // "postgres" or "mysql"
	table  string
}

// insertSQL is the single-row insert of the live workload. `sent` is
// stamped by the server in the writing transaction, in microseconds since
// the epoch, so the latency needs no time zone on either side.
func (t liveTable) insertSQL() string {
	if t.driver == "postgres" {
		return "INSERT INTO " + t.table + ` (id, name, amount, updated_at, note, sent)
			VALUES ($1, $2, $3, localtimestamp, $4, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)`
	}
	return "INSERT INTO " + t.table + ` (id, name, amount, updated_at, note, sent)
		VALUES (?, ?, ?, NOW(6), ?, UNIX_TIMESTAMP(NOW(6)) * 1000000)`
}

// liveResult is what one live phase measured.
type liveResult struct {
	rows       int64
	offered    float64 // rows/s the writers achieved
	throughput float64 // rows/s applied on the target
	p50, p99   float64 // end-to-end latency, ms
}

// livePhase writes single-row transactions into src, waits until each
// has arrived in dst, and measures. With saturate false the writers
// offer o.Rate rows/s for o.Duration; with saturate true they write as
// fast as they can for o.Duration. Row ids start at firstID.
func (b *bench) livePhase(ctx context.Context, what string, src, dst liveTable, firstID int64, saturate bool) (liveResult, error) {
	writers := pacedWriters
	if saturate {
		writers = saturationWriters
	}
	n, elapsed, err := b.write(ctx, src, firstID, writers, saturate)
	if err != nil {
		return liveResult{}, fmt.Errorf("%s: write: %w", what, err)
	}
	res := liveResult{rows: n, offered: rate(n, elapsed)}
	b.logf("%s: wrote %d rows in %s (%.0f rows/s); waiting for them to arrive", what, n, elapsed.Round(time.Millisecond), res.offered)
	lastID := firstID + n - 1
	if err := b.waitArrived(ctx, dst, firstID, lastID, n); err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	lat, err := latencies(ctx, dst, firstID, lastID)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(lat.ms)) != n {
		return res, fmt.Errorf("%s: %d rows arrived with a sent time, want %d", what, len(lat.ms), n)
	}
	res.p50, res.p99 = percentile(lat.ms, 0.50), percentile(lat.ms, 0.99)
	span := lat.lastArrived - lat.firstSent
	if saturate {
		span = lat.lastArrived - lat.firstArrived
	}
	if span > 0 {
		res.throughput = float64(n) / (float64(span) / 1e6)
	}
	b.logf("%s: %d rows arrived: %.0f rows/s, latency p50 %.2f ms, p99 %.2f ms", what, n, res.throughput, res.p50, res.p99)
	return res, nil
}

// write runs the writers and returns n, the rows written (ids firstID to
// firstID+n-1), and the time from the first write's start to the last
// write's end.
func (b *bench) write(ctx context.Context, src liveTable, firstID int64, writers int, saturate bool) (int64, time.Duration, error) {
	conns := make([]*sql.Conn, 0, writers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range writers {
		c, err := src.db.Conn(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("open a writer connection: %w", err)
		}
		conns = append(conns, c)
		if err := c.PingContext(ctx); err != nil {
			return 0, 0, fmt.Errorf("open a writer connection: %w", err)
		}
	}
	total := int64(math.Round(float64(b.o.Rate) * b.o.Duration.Seconds()))
	interval := float64(time.Second) / float64(b.o.Rate)
	insert := src.insertSQL()
	// Ids are handed out in order under the lock, and none once the phase
	// is over, so the ids written have no gaps.
	var mu sync.Mutex
	var next int64
	var end time.Time
	take := func() (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if saturate && time.Now().After(end) {
			return 0, false
		}
		if !saturate && next >= total {
			return 0, false
		}
		next++
		return next - 1, true
	}
	var lastMu sync.Mutex
	var last time.Time
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	end = start.Add(b.o.Duration)
	for _, c := range conns {
		g.Go(func() error {
			for {
				j, ok := take()
				if !ok {
					return nil
				}
				if !saturate {
					due := start.Add(time.Duration(float64(j) * interval))
					if d := time.Until(due); d > 0 {
						select {
						case <-gctx.Done():
							return gctx.Err()
						case <-time.After(d):
						}
					}
				}
				id := firstID + j
				if _, err := c.ExecContext(gctx, insert, id, fmt.Sprintf("Customer %d", id), amount(id), note(id)); err != nil {
					return fmt.Errorf("insert row %d: %w", id, err)
				}
				now := time.Now()
				lastMu.Lock()
				if now.After(last) {
					last = now
				}
				lastMu.Unlock()
			}
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return next, last.Sub(start), nil
}

// amount and note give a live row realistic values.
func amount(id int64) string { return fmt.Sprintf("%d.%04d", id%100000, id%10000) }

func note(id int64) string {
	return "Note " + strings.Repeat(fmt.Sprintf("%032x", uint64(id)*0x9e3779b97f4a7c15), 3)
}

// waitArrived polls dst until the rows with ids first..last are all
// there. It fails when none arrives for stallTimeout.
func (b *bench) waitArrived(ctx context.Context, dst liveTable, first, last, want int64) error {
	q := fmt.Sprintf("SELECT count(*) FROM %s WHERE id BETWEEN %d AND %d", dst.table, first, last)
	var have int64 = -1
	lastMove := time.Now()
	for {
		var n int64
		if err := dst.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("count arrived rows: %w", err)
		}
		if n >= want {
			return nil
		}
		if n != have {
			have, lastMove = n, time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return fmt.Errorf("only %d of %d rows arrived in %s.%s, and none for %s", n, want, dst.driver, dst.table, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		// The rows carry their own arrival time, so polling slowly
		// costs no precision, and loads the target less.
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// arrivals are the per-row latencies of a phase and its time span, in
// microseconds since the epoch.
type arrivals struct {
	ms                                   []float64 // sorted
	firstSent, firstArrived, lastArrived int64
}

func latencies(ctx context.Context, dst liveTable, first, last int64) (arrivals, error) {
	rows, err := dst.db.QueryContext(ctx, fmt.Sprintf("SELECT sent, arrived FROM %s WHERE id BETWEEN %d AND %d", dst.table, first, last))
	if err != nil {
		return arrivals{}, fmt.Errorf("read arrivals: %w", err)
	}
	defer rows.Close()
	a := arrivals{firstSent: math.MaxInt64, firstArrived: math.MaxInt64}
	for rows.Next() {
		var sent sql.NullInt64
		var arrived int64
		if err := rows.Scan(&sent, &arrived); err != nil {
			return arrivals{}, fmt.Errorf("read arrivals: %w", err)
		}
		if !sent.Valid {
			return arrivals{}, errors.New("a row arrived without its sent time: the sent column was not synced")
		}
		a.ms = append(a.ms, float64(arrived-sent.Int64)/1000)
		a.firstSent = min(a.firstSent, sent.Int64)
		a.firstArrived = min(a.firstArrived, arrived)
		a.lastArrived = max(a.lastArrived, arrived)
	}
	if err := rows.Err(); err != nil {
		return arrivals{}, fmt.Errorf("read arrivals: %w", err)
	}
	slices.Sort(a.ms)
	return a, nil
}

// percentile of sorted values, interpolated between the closest ranks as
// PostgreSQL's percentile_cont does.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// addLive adds the four figures of a live phase: dualwrite's result next
// to the baseline's when there is one.
func (r *report) addLive(name string, dw liveResult, base *liveResult) {
	lines := []struct {
		label string
		unit  string
		get   func(*liveResult) float64
		ratio bool
	}{
		{"offered", unitRowsPerSec, func(l *liveResult) float64 { return l.offered }, false},
		{"throughput", unitRowsPerSec, func(l *liveResult) float64 { return l.throughput }, true},
		{"latency p50", unitMillis, func(l *liveResult) float64 { return l.p50 }, true},
		{"latency p99", unitMillis, func(l *liveResult) float64 { return l.p99 }, true},
	}
	for _, l := range lines {
		f := figure{name: name + " " + l.label, dw: measure{value: l.get(&dw), unit: l.unit, rows: dw.rows}, ratio: l.ratio}
		if base != nil {
			f.base = &measure{value: l.get(base), unit: l.unit, rows: base.rows}
		}
		r.add(f)
	}
}

package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// pgTableDDL is the customer-like row of every PostgreSQL table of the
// bench. `sent` is set by the live writers; `arrived` is never mapped, so
// its default stamps the moment a row is written on the target.
const pgTableDDL = `CREATE TABLE %s (
	id bigint PRIMARY KEY,
	name varchar(100) NOT NULL,
	amount numeric(19,4) NOT NULL,
	updated_at timestamp(6) NOT NULL,
	note text,
	sent bigint,
	arrived bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)`

// copyColumns are the columns the bulk baselines copy: the mapped ones.
const copyColumns = "id, name, amount, updated_at, note, sent"

// Live id ranges: each phase writes its own, so rows never collide.
const (
	fixedFirstID      = 1
	saturationFirstID = 100_000_001
)

// pgServer is the PostgreSQL server of the run.
type pgServer struct {
	admin    *sql.DB
	adminDSN string
	cfg      *pgx.ConnConfig
}

// openPG connects to the admin DSN, checks that logical decoding is on,
// and records the server facts in the report.
func (b *bench) openPG(ctx context.Context) (*pgServer, error) {
	cfg, err := pgx.ParseConfig(b.o.PG)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "--pg %q is not a PostgreSQL DSN; use postgres://user@host:5432/postgres", b.o.PG)
	}
	db, err := sql.Open("pgx", b.o.PG)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "--pg %q is not a PostgreSQL DSN", b.o.PG)
	}
	b.deferUndo("close the PostgreSQL admin connection", func(context.Context) error { return db.Close() })
	var version, walLevel, syncCommit, sharedBuffers string
	err = db.QueryRowContext(ctx, `SELECT current_setting('server_version'), current_setting('wal_level'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &walLevel, &syncCommit, &sharedBuffers)
	if err != nil {
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot query PostgreSQL at %s:%d; check --pg and that the server runs", cfg.Host, cfg.Port)
	}
	if walLevel != "logical" {
		return nil, problem.New(problem.ServerSetting, "PostgreSQL has wal_level=%s; log-based sync needs logical: run scripts/setup-postgres.sh", walLevel)
	}
	b.rep.fact("postgresql", fmt.Sprintf("%s (synchronous_commit=%s, shared_buffers=%s)", version, syncCommit, sharedBuffers))
	return &pgServer{admin: db, adminDSN: b.o.PG, cfg: cfg}, nil
}

// dsn is the admin DSN with another database.
func (s *pgServer) dsn(db string) string {
	if u, err := url.Parse(s.adminDSN); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		return u.String()
	}
	return s.adminDSN + " dbname=" + db
}

// conninfo is a libpq connection string to db, for CREATE SUBSCRIPTION.
func (s *pgServer) conninfo(db string) string {
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	ci := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", q(s.cfg.Host), s.cfg.Port, q(s.cfg.User), q(db))
	if s.cfg.Password != "" {
		ci += " password=" + q(s.cfg.Password)
	}
	return ci
}

// createDB creates a database for the run and opens it; it is dropped at
// the end unless --keep, and the replication slots left in it are dropped
// either way.
func (b *bench) createPGDB(ctx context.Context, s *pgServer, role string) (*sql.DB, string, error) {
	name := b.dbName(role)
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, "", fmt.Errorf("create PostgreSQL database %s: %w", name, err)
	}
	dsn := s.dsn(name)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, "", err
	}
	db.SetMaxOpenConns(2 * saturationWriters)
	db.SetMaxIdleConns(2 * saturationWriters)
	b.deferUndo("drop PostgreSQL database "+name, func(ctx context.Context) error {
		db.Close()
		// A map that could not be stopped leaves its slot behind.
		if _, err := s.admin.ExecContext(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name); err != nil {
			return err
		}
		if b.o.Keep {
			b.logf("kept PostgreSQL database %s", name)
			return nil
		}
		_, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	})
	return db, dsn, nil
}

// dropOrigins drops the replication origins the run's engines made
// (named after the link, dw_bench<id>...): they are cluster-wide and each
// holds one of max_replication_slots.
func (b *bench) dropOrigins(s *pgServer) {
	b.deferUndo("drop the run's replication origins", func(ctx context.Context) error {
		_, err := s.admin.ExecContext(ctx, `SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE $1`, "dw_bench"+b.id+"%")
		return err
	})
}

func execAll(ctx context.Context, db *sql.DB, stmts ...string) error {
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// createPGTables creates the tables, empty.
func createPGTables(ctx context.Context, db *sql.DB, tables ...string) error {
	for _, t := range tables {
		if err := execAll(ctx, db, fmt.Sprintf(pgTableDDL, t)); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	return nil
}

// fillPG generates rows 1..n of the customer-like table on the server.
func fillPG(ctx context.Context, db *sql.DB, table string, n int) error {
	return execAll(ctx, db,
		fmt.Sprintf(`INSERT INTO %s (id, name, amount, updated_at, note)
			SELECT i, 'Customer ' || i, round((random() * 100000)::numeric, 4),
				timestamp '2024-01-01' + i * interval '1 second', 'Note ' || repeat(md5(i::text), 3)
			FROM generate_series(1, %d) AS i`, table, n),
		"VACUUM (ANALYZE) "+table)
}

func countRows(ctx context.Context, db *sql.DB, table string) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// checkpoint flushes the server's dirty pages, so a timed phase does not
// pay for the writes of the one before.
func (b *bench) checkpoint(ctx context.Context, s *pgServer) {
	if _, err := s.admin.ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.logf("CHECKPOINT failed, going on: %v", err)
	}
}

// pgCopy is the plain bulk copy between two PostgreSQL databases:
// COPY (SELECT ...) TO STDOUT piped into COPY ... FROM STDIN.
func pgCopy(ctx context.Context, srcDSN, srcTable, dstDSN, dstTable string) (int64, time.Duration, error) {
	src, err := pgconn.Connect(ctx, srcDSN)
	if err != nil {
		return 0, 0, fmt.Errorf("connect for COPY: %w", err)
	}
	defer src.Close(context.WithoutCancel(ctx))
	dst, err := pgconn.Connect(ctx, dstDSN)
	if err != nil {
		return 0, 0, fmt.Errorf("connect for COPY: %w", err)
	}
	defer dst.Close(context.WithoutCancel(ctx))
	return timedPipe(ctx,
		func(w io.Writer) error {
			_, err := src.CopyTo(ctx, w, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", copyColumns, srcTable))
			return wrapErr("COPY TO STDOUT", err)
		},
		func(r io.Reader) (int64, error) { return copyFrom(ctx, dst, r, dstTable) })
}

// timedPipe streams what produce writes into consume and times the two
// together, from the first byte to the last row; it returns the rows
// consume reports.
func timedPipe(ctx context.Context, produce func(w io.Writer) error, consume func(r io.Reader) (int64, error)) (int64, time.Duration, error) {
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	start := time.Now()
	go func() {
		err := produce(pw)
		pw.CloseWithError(err)
		produced <- err
	}()
	n, err := consume(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	prodErr := <-produced
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if prodErr != nil {
		return 0, 0, prodErr
	}
	return n, elapsed, ctx.Err()
}

// copyFrom loads r (COPY text) into table with COPY FROM STDIN.
func copyFrom(ctx context.Context, dst *pgconn.PgConn, r io.Reader, table string) (int64, error) {
	tag, err := dst.CopyFrom(ctx, r, fmt.Sprintf("COPY %s (%s) FROM STDIN", table, copyColumns))
	if err != nil {
		return 0, fmt.Errorf("COPY FROM STDIN: %w", err)
	}
	return tag.RowsAffected(), nil
}

// wrapErr names the step that failed; nil stays nil.
func wrapErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", step, err)
}

// timeInitialSync runs the engine's map from POST run until Running and
// checks that the target holds want rows.
func (b *bench) timeInitialSync(ctx context.Context, p *engineProc, mapName string, target *sql.DB, table string, want int64) (time.Duration, error) {
	start := time.Now()
	if err := p.run(ctx, mapName); err != nil {
		return 0, err
	}
	v, err := p.waitRunning(ctx, mapName)
	if err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	n, err := countRows(ctx, target, table)
	if err != nil {
		return 0, err
	}
	if n != want || v.InitErrors != 0 {
		return 0, p.failed("map %s is Running after its initial sync but the target %s holds %d rows, want %d (%d initial sync errors: dualwrite maps errors %s)",
			mapName, table, n, want, v.InitErrors, mapName)
	}
	return elapsed, nil
}

// postgres is `dualwrite bench postgres`: PostgreSQL -> PostgreSQL.
func (b *bench) postgres(ctx context.Context) error {
	s, err := b.openPG(ctx)
	if err != nil {
		return err
	}
	b.dropOrigins(s)
	src, srcDSN, err := b.createPGDB(ctx, s, "src")
	if err != nil {
		return err
	}
	dst, dstDSN, err := b.createPGDB(ctx, s, "dst")
	if err != nil {
		return err
	}
	if err := createPGTables(ctx, src, "customer", "customer_small", "live", "live_native"); err != nil {
		return err
	}
	if err := createPGTables(ctx, dst, "customer", "customer_copy", "customer_small", "live", "live_native"); err != nil {
		return err
	}
	small := b.smallRows()
	b.logf("generating %d + %d source rows in %s", b.o.Rows, small, b.dbName("src"))
	if err := fillPG(ctx, src, "customer", b.o.Rows); err != nil {
		return err
	}
	if err := fillPG(ctx, src, "customer_small", small); err != nil {
		return err
	}
	rows := int64(b.o.Rows)
	left := side{name: "src", driver: "postgres", dsn: srcDSN}
	right := side{name: "dst", driver: "postgres", dsn: dstDSN}

	// Initial sync: plain COPY, then the engine at a tenth of the size
	// and at the full size, each engine fresh so its peak memory is its own.
	b.checkpoint(ctx, s)
	copied, copyTime, err := pgCopy(ctx, srcDSN, "customer", dstDSN, "customer_copy")
	if err != nil {
		return fmt.Errorf("plain COPY baseline: %w", err)
	}
	if copied != rows {
		return fmt.Errorf("plain COPY baseline copied %d rows, want %d", copied, rows)
	}
	b.logf("initial sync pg->pg: plain COPY %d rows in %s", copied, copyTime.Round(time.Millisecond))
	memSmall, smallTime, err := b.engineInitialSync(ctx, s, left, right, "customers_small", "customer_small", dst, int64(small))
	if err != nil {
		return err
	}
	memFull, fullTime, err := b.engineInitialSync(ctx, s, left, right, "customers", "customer", dst, rows)
	if err != nil {
		return err
	}
	b.rep.add(figure{name: "initial sync pg->pg", dw: measure{rate(rows, fullTime), unitRowsPerSec, rows},
		base: &measure{rate(rows, copyTime), unitRowsPerSec, rows}, ratio: true})
	b.rep.add(figure{name: "initial sync pg->pg, 1/10 size", dw: measure{rate(int64(small), smallTime), unitRowsPerSec, int64(small)}})

	// A map with three lookups: its initial sync next to the flat
	// table's, and the catch-up replay of both.
	lk, err := b.lookupsPhase(ctx, s, left, right, src, dst)
	if err != nil {
		return err
	}
	flatRate := measure{rate(rows, fullTime), unitRowsPerSec, rows}
	b.rep.add(figure{name: "initial sync 3 lookups pg->pg", dw: measure{rate(rows, lk.init), unitRowsPerSec, rows}, base: &flatRate, ratio: true})
	flatReplay := measure{rate(lk.replayRows, lk.flatReplay), unitRowsPerSec, lk.replayRows}
	b.rep.add(figure{name: "catch-up replay pg->pg", dw: flatReplay})
	b.rep.add(figure{name: "catch-up replay 3 lookups pg->pg", dw: measure{rate(lk.replayRows, lk.replay), unitRowsPerSec, lk.replayRows}, base: &flatReplay, ratio: true})

	// Live sync: the engine on a map that flows both ways, then native
	// logical replication, the same workload each.
	fixedName := fmt.Sprintf("live %d/s pg->pg", b.o.Rate)
	p, err := b.startEngine(ctx, left, right, []tableMap{{name: "live", left: "live", right: "live"}})
	if err != nil {
		return err
	}
	if _, err := b.timeInitialSync(ctx, p, "live", dst, "live", 0); err != nil {
		return err
	}
	dwSrc, dwDst := liveTable{src, "postgres", "live"}, liveTable{dst, "postgres", "live"}
	dwFixed, err := b.livePhase(ctx, "dualwrite "+fixedName, dwSrc, dwDst, fixedFirstID, false)
	if err != nil {
		return engineErr(ctx, p, err)
	}
	dwSat, err := b.livePhase(ctx, "dualwrite live saturation pg->pg", dwSrc, dwDst, saturationFirstID, true)
	if err != nil {
		return engineErr(ctx, p, err)
	}
	memLive, err := p.peakMemory()
	if err != nil {
		return err
	}
	if err := p.stop(ctx); err != nil {
		return err
	}
	nativeFixed, nativeSat, err := b.nativeLive(ctx, s, src, dst, fixedName)
	if err != nil {
		return err
	}
	b.rep.addLive(fixedName, dwFixed, &nativeFixed)
	b.rep.addLive("live saturation pg->pg", dwSat, &nativeSat)

	b.rep.add(figure{name: fmt.Sprintf("memory initial sync %d rows", small), dw: measure{mib(memSmall), unitMiB, int64(small)}})
	b.rep.add(figure{name: fmt.Sprintf("memory initial sync %d rows", rows), dw: measure{mib(memFull), unitMiB, rows},
		base: &measure{mib(memSmall), unitMiB, int64(small)}, ratio: true})
	b.rep.add(figure{name: "memory live sync", dw: measure{mib(memLive), unitMiB, dwFixed.rows + dwSat.rows}})
	b.rep.add(figure{name: "memory initial sync 3 lookups", dw: measure{mib(lk.initPeak), unitMiB, rows},
		base: &measure{mib(memFull), unitMiB, rows}, ratio: true})
	b.rep.add(figure{name: "memory catch-up replay", dw: measure{mib(lk.flatReplayPeak), unitMiB, lk.replayRows}})
	b.rep.add(figure{name: "memory catch-up replay 3 lookups", dw: measure{mib(lk.replayPeak), unitMiB, lk.replayRows},
		base: &measure{mib(lk.flatReplayPeak), unitMiB, lk.replayRows}, ratio: true})
	b.rep.note("Baselines: initial sync = COPY (SELECT ...) TO STDOUT piped into COPY ... FROM STDIN between the same two databases;")
	b.rep.note("live = PostgreSQL's native logical replication (publication + subscription, pgoutput) applying the same workload;")
	b.rep.note("memory = dualwrite's peak resident memory (VmHWM) at the full size next to the same figure at a tenth of it.")
	b.rep.note("3 lookups = customers keyed by (company, account) with a currency lookup, a customer-group lookup within the company")
	b.rep.note("and an invoice-account self-reference within the company, into generated uuids on the target; its baselines are the")
	b.rep.note("flat table's figures of the same run. Catch-up replay = rows queued while the map is paused, in ten source transactions,")
	b.rep.note("timed from resume until the queue is replayed and the map Running; its memory is the peak (VmHWM reset at resume) during it.")
	b.rep.note(ratioNote)
	b.rep.note(latencyNote)
	return nil
}

const ratioNote = "RATIO = dualwrite / baseline: for rows/s above 1 is faster; for latency above 1 is slower; for memory 1.00 is flat as the table grows."

const latencyNote = "Latency = arrived - sent per row (sent stamped by the writing transaction, arrived by the target's column default as the row is written);\n" +
	"throughput = rows / (last arrived - first sent) at the fixed rate, rows / (last arrived - first arrived) at saturation."

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// engineErr adds the end of the engine's log to a failed live phase,
// unless the run was interrupted.
func engineErr(ctx context.Context, p *engineProc, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w; engine log %s ends with:\n%s", err, p.logPath, logTail(p.logPath, 15))
}

// engineInitialSync starts a fresh engine for one map, times its initial
// sync, reads its peak memory and stops it.
func (b *bench) engineInitialSync(ctx context.Context, s *pgServer, left, right side, mapName, table string, target *sql.DB, want int64) (peak int64, elapsed time.Duration, err error) {
	p, err := b.startEngine(ctx, left, right, []tableMap{{name: mapName, left: table, right: table}})
	if err != nil {
		return 0, 0, err
	}
	if s != nil {
		b.checkpoint(ctx, s)
	}
	elapsed, err = b.timeInitialSync(ctx, p, mapName, target, table, want)
	if err != nil {
		return 0, 0, err
	}
	peak, err = p.peakMemory()
	if err != nil {
		return 0, 0, err
	}
	b.logf("initial sync %s: dualwrite %d rows in %s (%.0f rows/s), peak memory %.1f MiB", mapName, want, elapsed.Round(time.Millisecond), rate(want, elapsed), mib(peak))
	return peak, elapsed, p.stop(ctx)
}

// nativeLive runs the live workload through native logical replication:
// a slot made first in the source database (the subscriber cannot create
// one in its own cluster), then a subscription that uses it.
func (b *bench) nativeLive(ctx context.Context, s *pgServer, src, dst *sql.DB, fixedName string) (fixed, sat liveResult, err error) {
	name := "dw_bench_" + b.id + "_native"
	// The column list leaves `arrived` out, so the subscriber's default
	// stamps it, as the engine's target does.
	if err := execAll(ctx, src, "CREATE PUBLICATION "+name+" FOR TABLE live_native ("+copyColumns+")"); err != nil {
		return fixed, sat, fmt.Errorf("native replication: %w", err)
	}
	if _, err := src.ExecContext(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name); err != nil {
		return fixed, sat, fmt.Errorf("native replication: create slot: %w", err)
	}
	dropSlot := b.undoNow("drop the native replication slot "+name, func(ctx context.Context) error {
		return dropSlot(ctx, s.admin, name)
	})
	sub := fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION %s WITH (create_slot = false, slot_name = '%s', copy_data = false)",
		name, strings.ReplaceAll(s.conninfo(b.dbName("src")), "'", "''"), name, name)
	if err := execAll(ctx, dst, sub); err != nil {
		return fixed, sat, fmt.Errorf("native replication: %w", err)
	}
	dropSub := b.undoNow("drop the native subscription "+name, func(ctx context.Context) error {
		// Detach the slot first: it is dropped on its own, after.
		return execAll(ctx, dst,
			"ALTER SUBSCRIPTION "+name+" DISABLE",
			"ALTER SUBSCRIPTION "+name+" SET (slot_name = NONE)",
			"DROP SUBSCRIPTION "+name)
	})
	if err := waitSlotActive(ctx, s.admin, name); err != nil {
		return fixed, sat, err
	}
	nSrc, nDst := liveTable{src, "postgres", "live_native"}, liveTable{dst, "postgres", "live_native"}
	if fixed, err = b.livePhase(ctx, "native "+fixedName, nSrc, nDst, fixedFirstID, false); err != nil {
		return fixed, sat, err
	}
	if sat, err = b.livePhase(ctx, "native live saturation pg->pg", nSrc, nDst, saturationFirstID, true); err != nil {
		return fixed, sat, err
	}
	if err := dropSub(ctx); err != nil {
		return fixed, sat, err
	}
	return fixed, sat, dropSlot(ctx)
}

// undoNow registers fn for the end of the run and returns a function that
// runs it earlier; either way it runs once.
func (b *bench) undoNow(what string, fn func(ctx context.Context) error) func(ctx context.Context) error {
	done := false
	once := func(ctx context.Context) error {
		if done {
			return nil
		}
		done = true
		if err := fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	b.deferUndo(what, once)
	return once
}

// dropSlot drops a replication slot, waiting for its walsender to let go.
func dropSlot(ctx context.Context, admin *sql.DB, slot string) error {
	for i := 0; ; i++ {
		_, err := admin.ExecContext(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil {
			return nil
		}
		if i >= 100 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitSlotActive(ctx context.Context, admin *sql.DB, slot string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var active bool
		err := admin.QueryRowContext(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if err != nil {
			return fmt.Errorf("native replication: read slot %s: %w", slot, err)
		}
		if active {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("native replication: the subscription did not start streaming from slot %s within a minute; see the PostgreSQL log", slot)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

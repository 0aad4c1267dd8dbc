package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// myTableDDL is pgTableDDL in MariaDB's dialect; `sent` and `arrived`
// are microseconds since the epoch on both servers.
const myTableDDL = `CREATE TABLE %s (
	id BIGINT NOT NULL PRIMARY KEY,
	name VARCHAR(100) NOT NULL,
	amount DECIMAL(19,4) NOT NULL,
	updated_at DATETIME(6) NOT NULL,
	note TEXT,
	sent BIGINT,
	arrived BIGINT NOT NULL DEFAULT (UNIX_TIMESTAMP(NOW(6)) * 1000000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// Live id ranges of the MariaDB -> PostgreSQL phases (the PostgreSQL ->
// MariaDB phases use fixedFirstID and saturationFirstID).
const (
	reverseFixedFirstID      = 200_000_001
	reverseSaturationFirstID = 300_000_001
)

// myServer is the MariaDB server of the run.
type myServer struct {
	admin *sql.DB
	cfg   *gomysql.Config
}

func (b *bench) openMariaDB(ctx context.Context) (*myServer, error) {
	cfg, err := gomysql.ParseDSN(b.o.MySQL)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "--mysql %q is not a MariaDB DSN; use user:password@tcp(host:3306)/", b.o.MySQL)
	}
	db, err := sql.Open("mysql", b.o.MySQL)
	if err != nil {
		return nil, problem.Wrap(problem.ConfigInvalid, err, "--mysql %q is not a MariaDB DSN", b.o.MySQL)
	}
	b.deferUndo("close the MariaDB admin connection", func(context.Context) error { return db.Close() })
	var version, format string
	var logBin, flush, syncBinlog, pool int64
	err = db.QueryRowContext(ctx, `SELECT VERSION(), @@log_bin, @@binlog_format, @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@innodb_buffer_pool_size`).
		Scan(&version, &logBin, &format, &flush, &syncBinlog, &pool)
	if err != nil {
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot query MariaDB at %s; check --mysql and that the server runs", cfg.Addr)
	}
	if logBin != 1 || format != "ROW" {
		return nil, problem.New(problem.ServerSetting, "MariaDB has log_bin=%d binlog_format=%s; log-based sync needs the binlog in ROW format: run scripts/setup-mariadb.sh", logBin, format)
	}
	b.rep.fact("mariadb", fmt.Sprintf("%s (innodb_flush_log_at_trx_commit=%d, sync_binlog=%d, innodb_buffer_pool_size=%dMB)", version, flush, syncBinlog, pool>>20))
	return &myServer{admin: db, cfg: cfg}, nil
}

// createMariaDB creates a database for the run; it is dropped at the end
// unless --keep. The connection it returns interpolates parameters, so a
// single-row insert is one round trip.
func (b *bench) createMariaDB(ctx context.Context, s *myServer, role string) (*sql.DB, string, error) {
	name := b.dbName(role)
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, "", fmt.Errorf("create MariaDB database %s: %w", name, err)
	}
	cfg := s.cfg.Clone()
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	cfg.InterpolateParams = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, "", err
	}
	db.SetMaxOpenConns(2 * saturationWriters)
	db.SetMaxIdleConns(2 * saturationWriters)
	b.deferUndo("drop MariaDB database "+name, func(ctx context.Context) error {
		db.Close()
		if b.o.Keep {
			b.logf("kept MariaDB database %s", name)
			return nil
		}
		_, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
		return err
	})
	return db, dsn, nil
}

func createMariaDBTables(ctx context.Context, db *sql.DB, tables ...string) error {
	for _, t := range tables {
		if err := execAll(ctx, db, fmt.Sprintf(myTableDDL, t)); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	return nil
}

// fillMariaDB generates rows 1..n on the server, from the Sequence
// engine's seq_ tables, in batches that keep each transaction moderate.
func fillMariaDB(ctx context.Context, db *sql.DB, table string, n int) error {
	const batch = 100_000
	for lo := 1; lo <= n; lo += batch {
		hi := min(lo+batch-1, n)
		_, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (id, name, amount, updated_at, note)
			SELECT seq, CONCAT('Customer ', seq), ROUND(RAND() * 100000, 4),
				TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, CONCAT('Note ', REPEAT(MD5(seq), 3))
			FROM seq_%d_to_%d`, table, lo, hi))
		if err != nil {
			return fmt.Errorf("generate rows %d-%d in MariaDB (needs the Sequence engine): %w", lo, hi, err)
		}
	}
	return execAll(ctx, db, "ANALYZE TABLE "+table)
}

// pgToMariaDB is the plain bulk load PostgreSQL -> MariaDB: COPY TO
// STDOUT streamed into LOAD DATA LOCAL INFILE. PostgreSQL's text format
// (tab-separated, \N for NULL, backslash escapes) is LOAD DATA's default.
func (b *bench) pgToMariaDB(ctx context.Context, pgDSN, srcTable string, my *sql.DB, dstTable string) (int64, time.Duration, error) {
	src, err := pgconn.Connect(ctx, pgDSN)
	if err != nil {
		return 0, 0, fmt.Errorf("connect for COPY: %w", err)
	}
	defer src.Close(context.WithoutCancel(ctx))
	handler := "dw_bench_" + b.id + "_" + dstTable
	return timedPipe(ctx,
		func(w io.Writer) error {
			_, err := src.CopyTo(ctx, w, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", copyColumns, srcTable))
			return wrapErr("COPY TO STDOUT", err)
		},
		func(r io.Reader) (int64, error) {
			gomysql.RegisterReaderHandler(handler, func() io.Reader { return r })
			defer gomysql.DeregisterReaderHandler(handler)
			res, err := my.ExecContext(ctx, fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::%s' INTO TABLE %s CHARACTER SET utf8mb4 (%s)", handler, dstTable, copyColumns))
			if err != nil {
				return 0, fmt.Errorf("LOAD DATA LOCAL INFILE: %w", err)
			}
			return res.RowsAffected()
		})
}

// mariaDBToPG is the plain bulk load MariaDB -> PostgreSQL: a SELECT
// streamed into COPY FROM STDIN.
func mariaDBToPG(ctx context.Context, my *sql.DB, srcTable, pgDSN, dstTable string) (int64, time.Duration, error) {
	dst, err := pgconn.Connect(ctx, pgDSN)
	if err != nil {
		return 0, 0, fmt.Errorf("connect for COPY: %w", err)
	}
	defer dst.Close(context.WithoutCancel(ctx))
	return timedPipe(ctx,
		func(w io.Writer) error {
			err := streamCopyText(ctx, my, fmt.Sprintf("SELECT %s FROM %s", copyColumns, srcTable), 6, w)
			return wrapErr("SELECT from MariaDB", err)
		},
		func(r io.Reader) (int64, error) { return copyFrom(ctx, dst, r, dstTable) })
}

// streamCopyText writes the result of query in PostgreSQL's COPY text
// format.
func streamCopyText(ctx context.Context, db *sql.DB, query string, ncols int, w io.Writer) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(w, 256<<10)
	raw := make([]sql.RawBytes, ncols)
	keep := make([][]byte, ncols) // non-nil buffers, so an empty value is not read as NULL
	dest := make([]any, ncols)
	for i := range raw {
		keep[i] = make([]byte, 0, 128)
		dest[i] = &raw[i]
	}
	var line []byte
	for rows.Next() {
		for i := range raw {
			raw[i] = keep[i][:0]
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		line = line[:0]
		for i, v := range raw {
			if i > 0 {
				line = append(line, '\t')
			}
			if v == nil {
				line = append(line, '\\', 'N')
				continue
			}
			line = pgrepl.AppendCopyText(line, v)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

// mysql is `dualwrite bench mysql`: PostgreSQL <-> MariaDB.
func (b *bench) mysql(ctx context.Context) error {
	s, err := b.openPG(ctx)
	if err != nil {
		return err
	}
	b.dropOrigins(s)
	m, err := b.openMariaDB(ctx)
	if err != nil {
		return err
	}
	pg, pgDSN, err := b.createPGDB(ctx, s, "pg")
	if err != nil {
		return err
	}
	my, myDSN, err := b.createMariaDB(ctx, m, "my")
	if err != nil {
		return err
	}
	if err := createPGTables(ctx, pg, "customer", "customer_m", "customer_m_copy", "live"); err != nil {
		return err
	}
	if err := createMariaDBTables(ctx, my, "customer", "customer_copy", "customer_m", "live"); err != nil {
		return err
	}
	b.logf("generating %d source rows in %s and %d in %s", b.o.Rows, b.dbName("pg"), b.o.Rows, b.dbName("my"))
	if err := fillPG(ctx, pg, "customer", b.o.Rows); err != nil {
		return err
	}
	if err := fillMariaDB(ctx, my, "customer_m", b.o.Rows); err != nil {
		return err
	}
	rows := int64(b.o.Rows)
	left := side{name: "pg", driver: "postgres", dsn: pgDSN}
	right := side{name: "mariadb", driver: "mysql", dsn: myDSN}

	// PostgreSQL -> MariaDB.
	b.checkpoint(ctx, s)
	n, loadTime, err := b.pgToMariaDB(ctx, pgDSN, "customer", my, "customer_copy")
	if err != nil {
		return fmt.Errorf("plain bulk load baseline PostgreSQL -> MariaDB: %w", err)
	}
	if n != rows {
		return fmt.Errorf("plain bulk load baseline PostgreSQL -> MariaDB loaded %d rows, want %d", n, rows)
	}
	b.logf("initial sync pg->mariadb: plain COPY | LOAD DATA %d rows in %s", n, loadTime.Round(time.Millisecond))
	memPM, pmTime, err := b.engineInitialSync(ctx, s, left, right, "customers", "customer", my, rows)
	if err != nil {
		return err
	}
	b.rep.add(figure{name: "initial sync pg->mariadb", dw: measure{rate(rows, pmTime), unitRowsPerSec, rows},
		base: &measure{rate(rows, loadTime), unitRowsPerSec, rows}, ratio: true})

	// MariaDB -> PostgreSQL.
	b.checkpoint(ctx, s)
	n, selectTime, err := mariaDBToPG(ctx, my, "customer_m", pgDSN, "customer_m_copy")
	if err != nil {
		return fmt.Errorf("plain bulk load baseline MariaDB -> PostgreSQL: %w", err)
	}
	if n != rows {
		return fmt.Errorf("plain bulk load baseline MariaDB -> PostgreSQL copied %d rows, want %d", n, rows)
	}
	b.logf("initial sync mariadb->pg: plain SELECT | COPY FROM %d rows in %s", n, selectTime.Round(time.Millisecond))
	memMP, mpTime, err := b.engineInitialSync(ctx, s, left, right, "customers_m", "customer_m", pg, rows)
	if err != nil {
		return err
	}
	b.rep.add(figure{name: "initial sync mariadb->pg", dw: measure{rate(rows, mpTime), unitRowsPerSec, rows},
		base: &measure{rate(rows, selectTime), unitRowsPerSec, rows}, ratio: true})

	// Live sync, both ways on one map.
	p, err := b.startEngine(ctx, left, right, []tableMap{{name: "live", left: "live", right: "live"}})
	if err != nil {
		return err
	}
	if _, err := b.timeInitialSync(ctx, p, "live", my, "live", 0); err != nil {
		return err
	}
	pgLive, myLive := liveTable{pg, "postgres", "live"}, liveTable{my, "mysql", "live"}
	phases := []struct {
		name     string
		src, dst liveTable
		firstID  int64
		saturate bool
	}{
		{fmt.Sprintf("live %d/s pg->mariadb", b.o.Rate), pgLive, myLive, fixedFirstID, false},
		{"live saturation pg->mariadb", pgLive, myLive, saturationFirstID, true},
		{fmt.Sprintf("live %d/s mariadb->pg", b.o.Rate), myLive, pgLive, reverseFixedFirstID, false},
		{"live saturation mariadb->pg", myLive, pgLive, reverseSaturationFirstID, true},
	}
	var liveRows int64
	for _, ph := range phases {
		res, err := b.livePhase(ctx, "dualwrite "+ph.name, ph.src, ph.dst, ph.firstID, ph.saturate)
		if err != nil {
			return engineErr(ctx, p, err)
		}
		b.rep.addLive(ph.name, res, nil)
		liveRows += res.rows
	}
	memLive, err := p.peakMemory()
	if err != nil {
		return err
	}
	if err := p.stop(ctx); err != nil {
		return err
	}
	b.rep.add(figure{name: "memory initial sync pg->mariadb", dw: measure{mib(memPM), unitMiB, rows}})
	b.rep.add(figure{name: "memory initial sync mariadb->pg", dw: measure{mib(memMP), unitMiB, rows}})
	b.rep.add(figure{name: "memory live sync", dw: measure{mib(memLive), unitMiB, liveRows}})
	b.rep.note("Baselines: initial sync pg->mariadb = COPY (SELECT ...) TO STDOUT streamed into LOAD DATA LOCAL INFILE;")
	b.rep.note("initial sync mariadb->pg = a SELECT streamed into COPY ... FROM STDIN. Live sync has no baseline here.")
	b.rep.note("Memory = dualwrite's peak resident memory (VmHWM) of the engine process of that phase.")
	b.rep.note(ratioNote)
	b.rep.note(latencyNote)
	return nil
}

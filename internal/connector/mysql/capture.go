package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/mysql/binlog"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// binlogPos is a place in the server's binary log.
type binlogPos struct {
	File   string
	Offset uint32
}

// fileIndex is the numeric suffix of a binlog file name ("mysql-bin.000042" → 42).
func fileIndex(name string) (uint64, error) {
	i := strings.LastIndexByte(name, '.')
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	if i < 0 || err != nil {
		return 0, fmt.Errorf("binlog file name %q has no numeric suffix", name)
	}
	return n, nil
}

// position is the change.Position of p: LSN = file index << 32 | offset,
// Token = file name, plus "|" and the GTID when known.
func (p binlogPos) position(gtid string) change.Position {
	idx, _ := fileIndex(p.File)
	tok := p.File
	if gtid != "" {
		tok += "|" + gtid
	}
	return change.Position{LSN: idx<<32 | uint64(p.Offset), Token: tok}
}

func (p binlogPos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Offset) }

// pending is a transaction handed out but not yet acknowledged.
type pending struct {
	pos        change.Position
	file       binlogPos
	commitTime time.Time
}

type item struct {
	tx  change.Tx
	err error
}

// tableMeta is the column information of a watched table, checked
// against each TABLE_MAP.
type tableMeta struct {
	info  *tableInfo
	types []byte // binlog column types of the TABLE_MAP it was checked with
}

// Capturer reads the binary log as a replica. A reader goroutine, owned
// by the capturer and stopped by Close, decodes events and hands whole
// transactions to Next through a small buffer.
type Capturer struct {
	c        *Connector
	watch    map[string]string // "schema\x00table" → configured name
	serverID uint32
	out      chan item
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
	echoes   atomic.Int64

	mu        sync.Mutex
	conn      *binlog.Conn
	acked     binlogPos // end of the last acknowledged transaction (or the start)
	unacked   []pending // handed out, not acknowledged, in order
	reader    binlogPos // end of the last event the reader processed
	lastEvent time.Time // header timestamp of that event
	fatal     error     // the error that stopped the reader
	lost      error     // why the reader is reconnecting; nil while it streams
	ddl       bool      // a DDL statement was read since SchemaChanges
	meta      map[string]*tableMeta
}

// Capture starts reading the binary log after opts.From (or at the
// current end of the log when From is zero).
func (c *Connector) Capture(ctx context.Context, opts connector.CaptureOptions) (connector.Capturer, error) {
	cp := &Capturer{
		c:        c,
		watch:    map[string]string{},
		serverID: c.serverID + c.nextID.Add(1) - 1,
		out:      make(chan item, 16),
		done:     make(chan struct{}),
		meta:     map[string]*tableMeta{},
	}
	for _, t := range opts.Tables {
		s, n := c.splitTable(t)
		cp.watch[s+"\x00"+n] = t
	}
	start, err := c.startPos(ctx, opts.From)
	if err != nil {
		return nil, err
	}
	cp.acked, cp.reader = start, start
	conn, err := cp.connect(ctx, start)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	cp.cancel = cancel
	cp.conn = conn
	go cp.run(rctx, conn, start)
	c.capMu.Lock()
	c.capturer = cp
	c.capMu.Unlock()
	return cp, nil
}

// startPos resolves where capture starts.
func (c *Connector) startPos(ctx context.Context, from change.Position) (binlogPos, error) {
	if from.IsZero() {
		p, err := c.masterStatus(ctx)
		if err != nil {
			return binlogPos{}, fmt.Errorf("capture: find the end of the binary log: %w", err)
		}
		return p, nil
	}
	file, _, _ := strings.Cut(from.Token, "|")
	p := binlogPos{File: file, Offset: uint32(from.LSN)}
	if file == "" {
		logs, err := c.binaryLogs(ctx)
		if err != nil {
			return binlogPos{}, fmt.Errorf("capture: list binary logs: %w", err)
		}
		for _, l := range logs {
			if idx, _ := fileIndex(l.name); idx == from.LSN>>32 {
				p.File = l.name
			}
		}
		if p.File == "" {
			return binlogPos{}, problem.Wrap(problem.LogPurged, connector.ErrLogPurged,
				"binlog file number %d of position %v is not on the server; stop the map and run it with initial sync", from.LSN>>32, from)
		}
	}
	return p, nil
}

type binaryLog struct {
	name string
	size int64
}

func (c *Connector) binaryLogs(ctx context.Context) ([]binaryLog, error) {
	rows, err := c.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []binaryLog
	for rows.Next() {
		var l binaryLog
		dest := []any{&l.name, &l.size}
		for len(dest) < len(cols) {
			dest = append(dest, new(any)) // MySQL 8 adds Encrypted
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// masterStatus is the server's current binlog end.
func (c *Connector) masterStatus(ctx context.Context) (binlogPos, error) {
	q := "SHOW MASTER STATUS"
	if !c.mariaDB {
		var v int
		fmt.Sscanf(c.version, "%d", &v)
		if v >= 9 || strings.HasPrefix(c.version, "8.4") {
			q = "SHOW BINARY LOG STATUS"
		}
	}
	rows, err := c.db.QueryContext(ctx, q)
	if err != nil {
		return binlogPos{}, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return binlogPos{}, err
		}
		return binlogPos{}, problem.New(problem.ServerSetting, "the binary log is off (log_bin=OFF); run scripts/setup-mariadb.sh or set log_bin, binlog_format=ROW and binlog_row_image=FULL and restart the server")
	}
	var p binlogPos
	dest := []any{&p.File, &p.Offset}
	for len(dest) < len(cols) {
		dest = append(dest, new(any))
	}
	if err := rows.Scan(dest...); err != nil {
		return binlogPos{}, err
	}
	return p, rows.Err()
}

// checkPurged fails with ErrLogPurged when p's file is no longer on the
// server.
func (c *Connector) checkPurged(ctx context.Context, p binlogPos) error {
	logs, err := c.binaryLogs(ctx)
	if err != nil {
		return fmt.Errorf("capture: list binary logs: %w", err)
	}
	for _, l := range logs {
		if l.name == p.File {
			if int64(p.Offset) > l.size {
				return problem.Wrap(problem.LogPurged, connector.ErrLogPurged,
					"position %s is beyond the end of %s (%d bytes): the log was reset; stop the map and run it with initial sync", p, l.name, l.size)
			}
			return nil
		}
	}
	return problem.Wrap(problem.LogPurged, connector.ErrLogPurged,
		"binlog file %s is no longer on the server (purged, or the log was reset); stop the map and run it with initial sync, and keep binlog_expire_logs_seconds above the longest pause", p.File)
}

// connect dials the server and starts the dump at p.
func (cp *Capturer) connect(ctx context.Context, p binlogPos) (*binlog.Conn, error) {
	if err := cp.c.checkPurged(ctx, p); err != nil {
		return nil, err
	}
	conn, err := binlog.Dial(ctx, binlog.Config{
		Addr: cp.c.cfg.Addr, User: cp.c.cfg.User, Password: cp.c.cfg.Passwd, ServerID: cp.serverID,
	})
	if err != nil {
		var se *binlog.ServerError
		if errors.As(err, &se) && (se.Code == 1227 || se.Code == 1045) {
			return nil, problem.Wrap(problem.MissingPrivilege, err, "the user %s cannot read the binary log; GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO it", cp.c.cfg.User)
		}
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot open a replication connection to %s; check the server and the user's privileges", cp.c.cfg.Addr)
	}
	if err := conn.StartDump(p.File, p.Offset); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// transient reports whether err is a lost connection worth reconnecting for.
func transient(err error) bool {
	var ne net.Error
	var se *binlog.ServerError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		return true
	case errors.As(err, &se):
		// Server shutdown, connection killed, query interrupted.
		return se.Code == 1053 || se.Code == 1927 || se.Code == 1317 || se.Code == 2013
	}
	var pe *problem.Error
	if errors.As(err, &pe) && pe.Code == problem.ConnectionFailed {
		return true
	}
	return false
}

// run is the reader goroutine: it streams, and on a lost connection
// reconnects with backoff.
func (cp *Capturer) run(ctx context.Context, conn *binlog.Conn, start binlogPos) {
	defer close(cp.done)
	backoff := 100 * time.Millisecond
	for {
		var err error
		if conn == nil {
			conn, err = cp.connect(ctx, start)
			if err == nil {
				cp.mu.Lock()
				cp.conn = conn
				cp.lost = nil
				cp.mu.Unlock()
			}
		}
		if err == nil {
			err = cp.stream(ctx, conn, start)
			conn.Close()
			conn = nil
			if err == nil {
				backoff = 100 * time.Millisecond
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !transient(err) {
			cp.mu.Lock()
			cp.fatal = err
			cp.mu.Unlock()
			select {
			case cp.out <- item{err: err}:
			case <-ctx.Done():
			}
			return
		}
		// Resume from the end of the last acknowledged transaction, so
		// that nothing handed out but not yet durable is lost; what is
		// handed out again the engine recognises by its position. Drop
		// what is buffered so that redelivery keeps commit order.
		cp.mu.Lock()
	drain:
		for {
			select {
			case <-cp.out:
			default:
				break drain
			}
		}
		start = cp.acked
		cp.unacked = nil
		cp.lost = err
		if err != nil && problem.CodeOf(err) == "" {
			cp.lost = problem.Wrap(problem.ConnectionFailed, err, "the binary log connection to %s is down; reconnecting", cp.c.cfg.Addr)
		}
		cp.meta = map[string]*tableMeta{}
		cp.mu.Unlock()
		cp.c.log.Warn("binlog connection lost; reconnecting", "error", err, "position", start.String(), "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// txState is the transaction being assembled.
type txState struct {
	inTx     bool
	gtid     string
	changes  []change.Change
	echo     bool // MySQL: the transaction wrote the echo marker
	echoRows int64
}

// stream reads events until the connection fails or ctx ends.
func (cp *Capturer) stream(ctx context.Context, conn *binlog.Conn, start binlogPos) error {
	// A cancelled reader closes its connection to unblock the read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	file := start.File
	var st txState
	for {
		ev, err := conn.ReadEvent()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var se *binlog.ServerError
			if errors.As(err, &se) && se.Code == 1236 {
				return problem.Wrap(problem.LogPurged, fmt.Errorf("%w: %w", connector.ErrLogPurged, err),
					"the server cannot send the binary log from %s; stop the map and run it with initial sync", start)
			}
			return err
		}
		if ev.Type != binlog.HeartbeatEvent && ev.Flags&binlog.FlagArtificial == 0 && ev.LogPos != 0 {
			cp.mu.Lock()
			cp.reader = binlogPos{File: file, Offset: ev.LogPos}
			cp.lastEvent = time.Unix(int64(ev.Timestamp), 0)
			cp.mu.Unlock()
		}
		switch b := ev.Body.(type) {
		case *binlog.Rotate:
			file = b.File
			if ev.Flags&binlog.FlagArtificial == 0 || ev.Timestamp == 0 {
				cp.mu.Lock()
				cp.reader = binlogPos{File: file, Offset: uint32(b.Position)}
				cp.mu.Unlock()
			}
		case *binlog.GTID:
			st = txState{gtid: b.ID}
			// A MariaDB GTID opens the group; a standalone group (DDL)
			// has no COMMIT and ends with its one statement. MySQL's
			// groups open with a BEGIN query or hold one DDL.
			st.inTx = conn.MariaDB() && !b.Standalone
		case *binlog.Query:
			switch q := strings.ToUpper(strings.TrimSpace(b.SQL)); {
			case q == "BEGIN":
				st.inTx = true
			case q == "COMMIT":
				if err := cp.finish(ctx, &st, ev, file); err != nil {
					return err
				}
			case q == "ROLLBACK":
				st = txState{}
			default:
				if name, ok := cp.truncated(ev, b); ok {
					// A TRUNCATE is logged as a statement, not as rows: it
					// is a change of its own for the engine (on_truncate).
					st.changes = append(st.changes, change.Change{Table: name, Op: change.Truncate})
				} else if name, ok := cp.statementWrite(ev, b); ok {
					// Invariant: a write to a watched table that the log
					// holds as a statement is never skipped in silence.
					return problem.New(problem.ServerSetting,
						"the binary log holds a write to %s as a statement, not as rows (binlog_format was changed from ROW for the server or a session); set binlog_format=ROW, then resync the maps on this side (stop, then run with initial sync): %.200s",
						name, b.SQL)
				}
				// DDL (or a statement-format DML, which carries no rows):
				// table definitions may have changed.
				cp.mu.Lock()
				cp.meta = map[string]*tableMeta{}
				cp.ddl = true
				cp.mu.Unlock()
				if !st.inTx {
					if err := cp.finish(ctx, &st, ev, file); err != nil {
						return err
					}
				}
			}
		case *binlog.XID:
			if err := cp.finish(ctx, &st, ev, file); err != nil {
				return err
			}
		case *binlog.Rows:
			if err := cp.rows(ctx, &st, ev, b); err != nil {
				return err
			}
		}
	}
}

// truncated returns the configured name of the watched table a QUERY
// event truncates. The engine's own statements (skip_replication) are
// not reported; the engine never truncates, but an echo is never a change.
func (cp *Capturer) truncated(ev *binlog.Event, q *binlog.Query) (string, bool) {
	if ev.Flags&binlog.FlagSkipReplication != 0 {
		return "", false
	}
	schema, table, ok := truncatedTable(q.SQL, q.Schema)
	if !ok {
		return "", false
	}
	name, ok := cp.watch[schema+"\x00"+table]
	return name, ok
}

// statementWrite returns the configured name of the watched table a DML
// statement logged as text writes to.
func (cp *Capturer) statementWrite(ev *binlog.Event, q *binlog.Query) (string, bool) {
	if ev.Flags&binlog.FlagSkipReplication != 0 {
		return "", false
	}
	schema, table, ok := statementTable(q.SQL, q.Schema)
	if !ok {
		return "", false
	}
	name, ok := cp.watch[schema+"\x00"+table]
	return name, ok
}

// rows turns a rows event of a watched table into changes.
func (cp *Capturer) rows(ctx context.Context, st *txState, ev *binlog.Event, b *binlog.Rows) error {
	if !cp.c.mariaDB && b.Table.Schema == cp.c.schema && b.Table.Table == markerTable {
		st.echo = true
		return nil
	}
	name, ok := cp.watch[b.Table.Schema+"\x00"+b.Table.Table]
	if !ok {
		return nil
	}
	n := int64(len(b.Rows))
	if b.Kind == binlog.RowsUpdate {
		n /= 2
	}
	if ev.Flags&binlog.FlagSkipReplication != 0 {
		// Invariant: the engine's own writes (skip_replication=1) are
		// never reported as changes.
		cp.echoes.Add(n)
		return nil
	}
	meta, err := cp.tableMeta(ctx, b.Table)
	if err != nil {
		return err
	}
	toRow := func(raw []any) (change.Row, error) {
		r := make(change.Row, len(raw))
		for i, v := range raw {
			if v == binlog.Absent {
				continue
			}
			ci := meta.info.Columns[i]
			cv, err := fromBinlog(ci, b.Table.Columns[i], v)
			if err != nil {
				return nil, fmt.Errorf("capture %s: %w", name, err)
			}
			r[ci.Name] = cv
		}
		return r, nil
	}
	step := 1
	if b.Kind == binlog.RowsUpdate {
		step = 2
	}
	for i := 0; i+step <= len(b.Rows); i += step {
		ch := change.Change{Table: name}
		var err error
		switch b.Kind {
		case binlog.RowsInsert:
			ch.Op = change.Insert
			ch.New, err = toRow(b.Rows[i])
		case binlog.RowsDelete:
			ch.Op = change.Delete
			ch.Old, err = toRow(b.Rows[i])
			ch.OldComplete = len(ch.Old) == len(b.Table.Columns)
		case binlog.RowsUpdate:
			ch.Op = change.Update
			ch.Old, err = toRow(b.Rows[i])
			if err == nil {
				ch.New, err = toRow(b.Rows[i+1])
			}
			ch.OldComplete = len(ch.Old) == len(b.Table.Columns)
		}
		if err != nil {
			return err
		}
		st.changes = append(st.changes, ch)
		st.echoRows++
	}
	return nil
}

// tableMeta returns the column information matching a TABLE_MAP, reading
// information_schema again when the cached one does not fit.
func (cp *Capturer) tableMeta(ctx context.Context, tm *binlog.TableMap) (*tableMeta, error) {
	key := tm.Schema + "\x00" + tm.Table
	types := make([]byte, len(tm.Columns))
	for i, c := range tm.Columns {
		types[i] = c.Type
	}
	cp.mu.Lock()
	m := cp.meta[key]
	cp.mu.Unlock()
	if m != nil && slices.Equal(m.types, types) {
		return m, nil
	}
	info, err := cp.c.describe(ctx, tm.Schema+"."+tm.Table)
	if err != nil {
		return nil, fmt.Errorf("capture %s.%s: read columns: %w", tm.Schema, tm.Table, err)
	}
	if len(info.Columns) != len(tm.Columns) {
		return nil, problem.New(problem.TypeMismatch,
			"table %s.%s has %d columns now but %d in the binary log at this position: it was altered since; stop the map and run it with initial sync",
			tm.Schema, tm.Table, len(info.Columns), len(tm.Columns))
	}
	m = &tableMeta{info: info, types: types}
	cp.mu.Lock()
	cp.meta[key] = m
	cp.mu.Unlock()
	return m, nil
}

// finish ends the transaction at ev and hands it out.
func (cp *Capturer) finish(ctx context.Context, st *txState, ev *binlog.Event, file string) error {
	defer func() { *st = txState{} }()
	end := binlogPos{File: file, Offset: ev.LogPos}
	if st.echo {
		// Invariant: a MySQL transaction with the echo marker is the
		// engine's own and is dropped whole.
		cp.echoes.Add(st.echoRows)
		return nil
	}
	if len(st.changes) == 0 {
		return nil
	}
	pos := end.position(st.gtid)
	id := st.gtid
	if id == "" {
		id = end.String()
	}
	tx := change.Tx{ID: id, Position: pos, CommitTime: time.Unix(int64(ev.Timestamp), 0).UTC(), Changes: st.changes}
	cp.mu.Lock()
	cp.unacked = append(cp.unacked, pending{pos: pos, file: end, commitTime: tx.CommitTime})
	cp.mu.Unlock()
	// Invariant: a Tx is handed out only at its end (XID, COMMIT or the
	// one statement of a standalone group), whole.
	select {
	case cp.out <- item{tx: tx}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Next returns the next committed transaction on the watched tables.
func (cp *Capturer) Next(ctx context.Context) (change.Tx, error) {
	select {
	case it := <-cp.out:
		return it.tx, it.err
	case <-ctx.Done():
		return change.Tx{}, ctx.Err()
	case <-cp.done:
		select {
		case it := <-cp.out:
			return it.tx, it.err
		default:
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		if cp.fatal != nil {
			return change.Tx{}, cp.fatal
		}
		return change.Tx{}, errors.New("capture is closed")
	}
}

// Ack records that every transaction up to pos is durable downstream. The
// server keeps nothing for a replica; the position is used for Lag and as
// the restart point after a lost connection.
func (cp *Capturer) Ack(ctx context.Context, pos change.Position) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	file, _, _ := strings.Cut(pos.Token, "|")
	if file == "" {
		return fmt.Errorf("ack %v: position has no binlog file name", pos)
	}
	ap := binlogPos{File: file, Offset: uint32(pos.LSN)}
	if cp.acked.position("").Less(ap.position("")) {
		cp.acked = ap
	}
	i := 0
	for i < len(cp.unacked) && !pos.Less(cp.unacked[i].pos) {
		i++
	}
	cp.unacked = cp.unacked[i:]
	return nil
}

// Stalled returns why the binary log connection is down while the reader
// reconnects, or nil.
func (cp *Capturer) Stalled() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.lost
}

var _ connector.StallReporter = (*Capturer)(nil)

// SchemaChanges returns every watched table after a DDL statement was read
// since the previous call (the statement is not parsed: any table may have
// changed), else nothing.
func (cp *Capturer) SchemaChanges() []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.ddl {
		return nil
	}
	cp.ddl = false
	out := make([]string, 0, len(cp.watch))
	for _, t := range cp.watch {
		out = append(out, t)
	}
	return out
}

var _ connector.SchemaWatcher = (*Capturer)(nil)

// EchoesSuppressed counts the engine's own row writes dropped.
func (cp *Capturer) EchoesSuppressed() int64 { return cp.echoes.Load() }

// Close stops the reader and waits for it.
func (cp *Capturer) Close() error {
	cp.once.Do(func() {
		cp.cancel()
		cp.mu.Lock()
		if cp.conn != nil {
			cp.conn.Close()
		}
		cp.mu.Unlock()
		<-cp.done
		cp.c.capMu.Lock()
		if cp.c.capturer == cp {
			cp.c.capturer = nil
		}
		cp.c.capMu.Unlock()
	})
	return nil
}

// Position returns the position capture started at, or the end of the
// last acknowledged transaction. The server keeps no position for us, so
// the engine records it (connector.Positioner).
func (cp *Capturer) Position() change.Position {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.acked.position("")
}

var _ connector.Positioner = (*Capturer)(nil)

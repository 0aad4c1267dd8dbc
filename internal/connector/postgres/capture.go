package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
	"github.com/dualwrite/dualwrite/internal/problem"
)

var (
	_ connector.EchoCounter   = (*capturer)(nil)
	_ connector.StallReporter = (*capturer)(nil)
	_ connector.SchemaWatcher = (*capturer)(nil)
)

const (
	statusInterval = 10 * time.Second
	maxBackoff     = 30 * time.Second
	// idleAdvance is how far the server's log must have moved past the
	// last acknowledged position, with nothing of ours pending, before
	// capture confirms it on its own so an idle slot does not pin WAL.
	idleAdvance = 64 << 20
	// stallProbe is how long a delivered transaction may wait for its Ack
	// before capture checks whether the server is shutting down, and how
	// often it checks again while the wait lasts.
	stallProbe = 2 * time.Second
)

// errServerStopping ends a stream whose server is shutting down while the
// engine still holds a transaction of it (see watchShutdown).
var errServerStopping = errors.New("the server is shutting down and waits for capture to confirm everything it sent; closing the stream so that it can stop")

// Capture ensures the publication and the slot and starts streaming
// after opts.From (zero: from the slot's confirmed position).
func (c *Connector) Capture(ctx context.Context, opts connector.CaptureOptions) (connector.Capturer, error) {
	if len(opts.Tables) == 0 {
		return nil, errors.New("capture: no tables to watch")
	}
	columns, err := c.preparePublication(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := c.ensureSlot(ctx, opts.From); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	cp := &capturer{
		c:         c,
		log:       c.log.With("publication", c.opts.Publication),
		asm:       newAssembler(opts.Tables, c.opts.Origin),
		out:       make(chan change.Tx),
		failed:    make(chan struct{}),
		ackNotify: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		idle:      idleAdvance,
		stall:     stallProbe,
		baseTypes: map[uint32]uint32{},
	}
	cp.asm.baseType = cp.resolveBaseType
	cp.asm.described = columns
	cp.asm.altered = cp.noteAltered
	cp.stopping = c.shuttingDown
	cp.acked.Store(opts.From.LSN)
	cp.queued = pgrepl.LSN(opts.From.LSN)
	cp.delivered.Store(opts.From.LSN)
	// Connect once here so that a bad slot or publication is reported by
	// Capture itself; later reconnects happen in the background.
	conn, err := cp.start(ctx, pgrepl.LSN(opts.From.LSN))
	if err != nil {
		return nil, fmt.Errorf("capture: %w", classify(err))
	}
	c.captureMu.Lock()
	c.capturers[cp] = struct{}{}
	c.captureMu.Unlock()
	go cp.run(conn)
	return cp, nil
}

// preparePublication makes the publication cover exactly opts.Tables and
// gives FullOld tables REPLICA IDENTITY FULL. It returns each table's
// column names as described now.
func (c *Connector) preparePublication(ctx context.Context, opts connector.CaptureOptions) (map[string][]string, error) {
	columns := map[string][]string{}
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		want := make([]string, 0, len(opts.Tables))
		for _, t := range opts.Tables {
			ti, err := describeOn(ctx, pc, t)
			if err != nil {
				return err
			}
			for _, col := range ti.desc.Columns {
				columns[t] = append(columns[t], col.Name)
			}
			s, n := splitName(t)
			want = append(want, s+"."+n)
			res, err := query(ctx, pc, "SELECT relreplident::text FROM pg_class WHERE oid = $1", []uint32{26}, []any{int64(ti.relid)})
			if err != nil {
				return fmt.Errorf("read replica identity of %s: %w", t, err)
			}
			ident := res.rows[0][0].(string)
			full := slices.Contains(opts.FullOld, t)
			switch {
			case full && ident != "f":
				if err := exec(ctx, pc, "ALTER TABLE "+ti.qname+" REPLICA IDENTITY FULL"); err != nil {
					return problem.Wrap(problem.MissingPrivilege, err, "cannot set REPLICA IDENTITY FULL on %s; the role must own the table", t)
				}
			case !full && ident == "n", !full && ident == "d" && len(ti.desc.PrimaryKey) == 0:
				return problem.New(problem.ServerSetting, "table %s has no primary key or replica identity; once published its UPDATEs and DELETEs would fail; add a primary key or run ALTER TABLE %s REPLICA IDENTITY USING INDEX <unique index>", t, t)
			}
		}
		slices.Sort(want)
		want = slices.Compact(want)
		quoted := make([]string, len(want))
		for i, w := range want {
			s, n, _ := strings.Cut(w, ".")
			quoted[i] = qi(s) + "." + qi(n)
		}
		pub := qi(c.opts.Publication)
		res, err := query(ctx, pc, "SELECT 1 FROM pg_publication WHERE pubname = $1", []uint32{25}, []any{c.opts.Publication})
		if err != nil {
			return fmt.Errorf("read publication: %w", err)
		}
		if len(res.rows) == 0 {
			err := exec(ctx, pc, "CREATE PUBLICATION "+pub+" FOR TABLE "+strings.Join(quoted, ", "))
			if err != nil {
				return problem.Wrap(problem.MissingPrivilege, err, "cannot create publication %s; the role needs CREATE on the database and must own the tables", c.opts.Publication)
			}
			c.log.Info("created publication", "tables", want)
			return nil
		}
		res, err = query(ctx, pc, "SELECT schemaname::text || '.' || tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", []uint32{25}, []any{c.opts.Publication})
		if err != nil {
			return fmt.Errorf("read publication tables: %w", err)
		}
		var have []string
		for _, r := range res.rows {
			have = append(have, r[0].(string))
		}
		slices.Sort(have)
		if slices.Equal(have, want) {
			return nil
		}
		if err := exec(ctx, pc, "ALTER PUBLICATION "+pub+" SET TABLE "+strings.Join(quoted, ", ")); err != nil {
			return problem.Wrap(problem.MissingPrivilege, err, "cannot change publication %s; the role must own it and the tables", c.opts.Publication)
		}
		c.log.Info("changed publication tables", "tables", want, "was", have)
		return nil
	})
	return columns, err
}

// ensureSlot creates the slot when it is missing. A missing slot with a
// non-zero From means the changes since From are gone.
func (c *Connector) ensureSlot(ctx context.Context, from change.Position) error {
	var exists bool
	var walStatus string
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()", []uint32{25}, []any{c.opts.Slot})
		if err != nil {
			return err
		}
		if len(res.rows) > 0 {
			exists, walStatus = true, res.rows[0][0].(string)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read slot %s: %w", c.opts.Slot, err)
	}
	if exists && walStatus == "lost" {
		return problem.Wrap(problem.LogPurged, connector.ErrLogPurged, "replication slot %s lost the WAL it needed (max_slot_wal_keep_size); resync the maps on this side (stop, then run with initial sync)", c.opts.Slot)
	}
	if exists {
		return nil
	}
	if !from.IsZero() {
		return problem.Wrap(problem.LogPurged, connector.ErrLogPurged, "replication slot %s does not exist, so the changes after %s are gone; resync the maps on this side (stop, then run with initial sync)", c.opts.Slot, from)
	}
	rc, err := c.connectReplication(ctx)
	if err != nil {
		return problem.Wrap(problem.ConnectionFailed, err, "cannot open a replication connection; check the role has REPLICATION and max_wal_senders is not exhausted")
	}
	lsn, snapshot, err := pgrepl.CreateLogicalSlotExport(ctx, rc, c.opts.Slot)
	if pgCode(err) == "42710" { // created concurrently
		rc.Close(context.Background())
		return nil
	}
	if err != nil {
		rc.Close(context.Background())
		if pgCode(err) == "53400" {
			return problem.Wrap(problem.ServerSetting, err, "all replication slots are in use; raise max_replication_slots (scripts/setup-postgres.sh) or drop unused slots")
		}
		return err
	}
	c.log.Info("created replication slot", "consistent_point", lsn.String(), "snapshot", snapshot)
	// The connection stays open, idle, so that the initial sync can read
	// inside the snapshot (see snapshot.go).
	c.keepSnapshot(rc, snapshot)
	return nil
}

// classify gives well-known server errors a code.
func classify(err error) error {
	switch pgCode(err) {
	case "42704": // undefined_object: slot or publication missing
		return problem.Wrap(problem.LogPurged, fmt.Errorf("%w: %w", connector.ErrLogPurged, err), "the replication slot or publication is gone; resync the maps on this side")
	case "55000": // object_not_in_prerequisite_state, e.g. slot invalidated
		return problem.Wrap(problem.LogPurged, fmt.Errorf("%w: %w", connector.ErrLogPurged, err), "the replication slot can no longer stream; resync the maps on this side")
	case "42501", "28000":
		return problem.Wrap(problem.MissingPrivilege, err, "the role may not stream changes; grant it REPLICATION")
	}
	return err
}

// permanent reports whether a stream error will not go away by reconnecting.
func permanent(err error) bool {
	return problem.CodeOf(err) != "" || errors.Is(err, connector.ErrLogPurged)
}

// capturer streams one slot. Its goroutine (run) owns the replication
// connection; Close stops and waits for it.
type capturer struct {
	c   *Connector
	log *slog.Logger
	asm *assembler

	out       chan change.Tx
	failed    chan struct{} // closed when err is set
	err       error
	ackNotify chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	acked     atomic.Uint64 // last position the engine acknowledged
	delivered atomic.Uint64 // end of the last transaction handed to Next (queued, for other goroutines)
	echoes    atomic.Int64
	idle      uint64
	stall     time.Duration                  // stallProbe
	stopping  func(ctx context.Context) bool // Connector.shuttingDown

	// lost is why the stream is down while run reconnects; nil while it
	// streams (Stalled).
	lostMu  sync.Mutex
	lost    error
	altered []string // tables whose Relation changed (SchemaChanges)

	// Owned by the run goroutine.
	queued    pgrepl.LSN // end LSN of the last transaction handed to Next
	confirmed pgrepl.LSN // last position reported to the server
	baseTypes map[uint32]uint32
}

// start connects and starts streaming from lsn. The walsender of a
// capturer just closed may hold the slot for a moment (55006, object in
// use): that is waited out, for up to ten seconds.
func (cp *capturer) start(ctx context.Context, lsn pgrepl.LSN) (*pgconn.PgConn, error) {
	var conn *pgconn.PgConn
	for attempt := 0; ; attempt++ {
		var err error
		if conn, err = cp.c.connectReplication(ctx); err != nil {
			return nil, err
		}
		err = pgrepl.StartReplication(ctx, conn, cp.c.opts.Slot, lsn, pgrepl.StartOptions{
			Publications: []string{cp.c.opts.Publication}, Messages: true,
		})
		if err == nil {
			break
		}
		conn.Close(context.Background())
		if pgCode(err) != "55006" || attempt >= 100 {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	cp.confirmed = lsn
	cp.asm.rels = map[uint32]pgrepl.Relation{} // the server resends them
	cp.asm.inTx = false
	return conn, nil
}

func (cp *capturer) run(conn *pgconn.PgConn) {
	defer close(cp.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-cp.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := time.Second
	for {
		var err error
		if conn != nil {
			sctx, scancel := context.WithCancelCause(ctx)
			stopWatch := cp.watchShutdown(sctx, scancel)
			err = cp.stream(sctx, conn)
			stopWatch()
			if cause := context.Cause(sctx); ctx.Err() == nil && errors.Is(cause, errServerStopping) {
				err = cause
			}
			scancel(nil)
			if ctx.Err() != nil && !conn.IsClosed() {
				// Report the last Ack before leaving; best effort.
				next := time.Time{}
				_ = cp.maybeStatus(conn, &next, true)
			}
			conn.Close(context.Background())
			conn = nil
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = classify(err)
			if permanent(err) {
				cp.err = err
				close(cp.failed)
				return
			}
			cp.setLost(err)
			cp.log.Error("capture stream lost; reconnecting from the last acknowledged position",
				"error", err, "position", pgrepl.LSN(cp.acked.Load()).String(), "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
		// Resume after the last acknowledged transaction; the server
		// resends what was delivered but not acknowledged, and stream
		// drops what Next already returned.
		conn, err = cp.start(ctx, pgrepl.LSN(cp.acked.Load()))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			err = classify(err)
			if permanent(err) {
				cp.err = err
				close(cp.failed)
				return
			}
			cp.setLost(err)
			cp.log.Error("capture reconnect failed", "error", err, "retry_in", backoff)
			continue
		}
		cp.setLost(nil)
		cp.log.Info("capture stream resumed", "position", pgrepl.LSN(cp.acked.Load()).String())
		backoff = time.Second
	}
}

// stream reads the replication connection until it fails or ctx ends.
func (cp *capturer) stream(ctx context.Context, conn *pgconn.PgConn) error {
	nextStatus := time.Now().Add(statusInterval)
	// Reads wait with a socket deadline rather than a context per message
	// (a context costs a watcher for each of millions of messages); the
	// end of ctx moves the deadline to now.
	netConn := conn.Conn()
	// Deferred in this order so that the watch is stopped before the
	// deadline is cleared.
	defer func() { _ = netConn.SetReadDeadline(time.Time{}) }()
	stopWatch := context.AfterFunc(ctx, func() { _ = netConn.SetReadDeadline(time.Now()) })
	defer stopWatch()
	for {
		if err := cp.maybeStatus(conn, &nextStatus, false); err != nil {
			return err
		}
		if err := netConn.SetReadDeadline(nextStatus); err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			x, err := pgrepl.ParseCopyData(m.Data)
			if err != nil {
				return err
			}
			switch d := x.(type) {
			case *pgrepl.XLogData:
				if err := cp.handleXLog(ctx, conn, d, &nextStatus); err != nil {
					return err
				}
			case *pgrepl.Keepalive:
				if !cp.asm.inTx {
					cp.advanceIdle(d.ServerEnd, d.ReplyRequested)
				}
				if err := cp.maybeStatus(conn, &nextStatus, d.ReplyRequested); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyDone:
			return errors.New("server ended the replication stream")
		}
	}
}

func (cp *capturer) handleXLog(ctx context.Context, conn *pgconn.PgConn, d *pgrepl.XLogData, nextStatus *time.Time) error {
	if cp.asm.echo && len(d.Data) > 0 && (d.Data[0] == 'I' || d.Data[0] == 'U' || d.Data[0] == 'D') {
		// A row of the engine's own transaction: dropped without parsing.
		return nil
	}
	m, err := pgrepl.Decode(d.Data)
	if err != nil {
		return err
	}
	done, err := cp.asm.handle(m)
	if err != nil || done == nil {
		return err
	}
	cp.c.lastCommit.Store(done.tx.CommitTime.UnixNano())
	if done.echo {
		cp.echoes.Add(1)
	}
	if !done.deliver || done.end <= cp.queued {
		// Nothing for the engine, or already delivered before a reconnect.
		cp.advanceIdle(done.end, false)
		return nil
	}
	for {
		select {
		case cp.out <- done.tx:
			cp.queued = done.end
			cp.delivered.Store(uint64(done.end))
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-cp.ackNotify:
		case <-time.After(time.Until(*nextStatus)):
		}
		// Keep the server informed while the engine is busy, or the
		// walsender would time us out.
		if err := cp.maybeStatus(conn, nextStatus, false); err != nil {
			return err
		}
	}
}

// watchShutdown ends the stream, cancelling it with errServerStopping,
// when the engine holds a delivered transaction without acknowledging it
// and the server refuses new sessions because it is shutting down.
//
// A server shutting down (pg_ctl stop -m fast, a service stop or restart)
// keeps each logical walsender until its client has confirmed all the WAL
// sent. The engine cannot acknowledge a transaction whose handling needs
// this same server (reconciliation writes back to the source, reads of
// its rows), and the server does not stop before it does: the shutdown
// would hang for as long as the engine runs. Closing the stream lets the
// server stop; the transaction is sent again after the reconnect, from
// the last acknowledged position, so nothing is lost.
func (cp *capturer) watchShutdown(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cp.stall)
		defer tick.Stop()
		last := cp.acked.Load()
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-tick.C:
			}
			acked := cp.acked.Load()
			stuck := stalled(last, acked, cp.delivered.Load())
			last = acked
			if stuck && cp.stopping(ctx) {
				cancel(errServerStopping)
				return
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
	}
}

// stalled reports whether the engine holds a delivered transaction
// (delivered past acked) and acknowledged nothing since the previous check,
// when the acknowledged position was last.
func stalled(last, acked, delivered uint64) bool {
	return acked == last && delivered > acked
}

// shuttingDown reports whether the server refuses new sessions because it
// is shutting down (SQLSTATE 57P03, cannot_connect_now). A server that is
// running, or cannot be reached at all, is not reported.
func (c *Connector) shuttingDown(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pc, err := c.connectSession(ctx)
	if err == nil {
		pc.Close(ctx)
		return false
	}
	return pgCode(err) == "57P03"
}

// advanceIdle confirms a position past the last acknowledged one when
// nothing delivered is waiting for an Ack and the gap is large, or when
// the server asked for a reply.
//
// A server shutting down (pg_ctl stop -m fast or smart, a service stop or
// restart) asks every logical walsender's client for a reply and waits
// until the client has confirmed all the WAL sent to it, its own shutdown
// checkpoint included; until then it does not finish shutting down. With
// nothing of ours pending, everything before the position it sends was
// either delivered and acknowledged or of no interest (echoes, other
// tables, transactions not yet committed, which are sent again after
// it), so confirming it is as safe as the idle case.
func (cp *capturer) advanceIdle(pos pgrepl.LSN, replyRequested bool) {
	acked := pgrepl.LSN(cp.acked.Load())
	if cp.queued > acked || pos <= cp.confirmed || pos <= acked {
		return
	}
	if replyRequested || uint64(pos-max(acked, cp.confirmed)) >= cp.idle {
		cp.confirmed = pos
	}
}

// maybeStatus sends a standby status update when one is due, requested,
// or the engine acknowledged something new.
func (cp *capturer) maybeStatus(conn *pgconn.PgConn, next *time.Time, force bool) error {
	select {
	case <-cp.ackNotify:
		force = true
	default:
	}
	if acked := pgrepl.LSN(cp.acked.Load()); acked > cp.confirmed {
		// Invariant: the slot's confirmed position only moves to what the
		// engine acknowledged as durable downstream (or past idle log).
		cp.confirmed = acked
		force = true
	}
	if !force && time.Now().Before(*next) {
		return nil
	}
	*next = time.Now().Add(statusInterval)
	return pgrepl.SendStandbyStatus(conn, cp.confirmed, time.Now())
}

func (cp *capturer) resolveBaseType(oid uint32) (uint32, error) {
	if b, ok := cp.baseTypes[oid]; ok {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := oid
	err := cp.c.withConn(ctx, func(pc *pgconn.PgConn) error {
		res, err := query(ctx, pc, "SELECT typbasetype::int8 FROM pg_type WHERE oid = $1 AND typtype = 'd'", []uint32{26}, []any{int64(oid)})
		if err == nil && len(res.rows) > 0 {
			base = uint32(res.rows[0][0].(int64))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	cp.baseTypes[oid] = base
	return base, nil
}

// Next returns the next committed transaction on the watched tables.
func (cp *capturer) Next(ctx context.Context) (change.Tx, error) {
	select {
	case tx := <-cp.out:
		return tx, nil
	case <-cp.failed:
		return change.Tx{}, fmt.Errorf("capture from slot %s: %w", cp.c.opts.Slot, cp.err)
	case <-ctx.Done():
		return change.Tx{}, ctx.Err()
	case <-cp.done:
		select {
		case <-cp.failed: // the stream stopped because of err
			return change.Tx{}, fmt.Errorf("capture from slot %s: %w", cp.c.opts.Slot, cp.err)
		default:
			return change.Tx{}, errStopped
		}
	}
}

// Ack lets the server release the log up to pos.
func (cp *capturer) Ack(ctx context.Context, pos change.Position) error {
	for {
		cur := cp.acked.Load()
		if pos.LSN <= cur {
			return nil
		}
		if cp.acked.CompareAndSwap(cur, pos.LSN) {
			break
		}
	}
	select {
	case cp.ackNotify <- struct{}{}:
	default:
	}
	return nil
}

// setLost records why the stream is down (nil: it streams again). An
// error without a code is the server being out of reach.
func (cp *capturer) setLost(err error) {
	if err != nil && problem.CodeOf(err) == "" {
		err = problem.Wrap(problem.ConnectionFailed, err, "the replication stream from slot %s is down; reconnecting", cp.c.opts.Slot)
	}
	cp.lostMu.Lock()
	cp.lost = err
	cp.lostMu.Unlock()
}

// noteAltered records a watched table whose definition changed.
func (cp *capturer) noteAltered(table string) {
	cp.lostMu.Lock()
	defer cp.lostMu.Unlock()
	if !slices.Contains(cp.altered, table) {
		cp.altered = append(cp.altered, table)
	}
}

// SchemaChanges returns the watched tables whose Relation message changed
// since the previous call.
func (cp *capturer) SchemaChanges() []string {
	cp.lostMu.Lock()
	defer cp.lostMu.Unlock()
	out := cp.altered
	cp.altered = nil
	return out
}

// Stalled returns why the stream is down while it reconnects, or nil.
func (cp *capturer) Stalled() error {
	cp.lostMu.Lock()
	defer cp.lostMu.Unlock()
	return cp.lost
}

// EchoesSuppressed counts the engine's own transactions capture dropped.
func (cp *capturer) EchoesSuppressed() int64 { return cp.echoes.Load() }

// Close stops streaming and waits for the stream goroutine.
func (cp *capturer) Close() error {
	cp.closeOnce.Do(func() { close(cp.stop) })
	<-cp.done
	cp.c.captureMu.Lock()
	delete(cp.c.capturers, cp)
	cp.c.captureMu.Unlock()
	return nil
}

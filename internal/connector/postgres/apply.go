package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// echoMode is how the engine's own transactions are marked so that
// capture on this side can drop them.
type echoMode int

const (
	echoUnknown echoMode = iota
	// echoOrigin: the apply session has a replication origin set up; the
	// log tags every transaction it commits with the origin, and pgoutput
	// sends an Origin message after Begin. Needs superuser or EXECUTE on
	// pg_replication_origin_create/_oid/_session_setup.
	echoOrigin
	// echoMessage: every apply transaction writes a transactional logical
	// decoding message (prefix echoMessagePrefix, content the origin name).
	// Needs only what capture needs.
	echoMessage
)

func (m echoMode) String() string {
	switch m {
	case echoOrigin:
		return "origin"
	case echoMessage:
		return "message"
	}
	return "unknown"
}

const progressDDL = `CREATE SCHEMA IF NOT EXISTS dualwrite;
CREATE TABLE IF NOT EXISTS dualwrite.progress (
  stream text PRIMARY KEY,
  lsn    bigint NOT NULL,
  sub    int NOT NULL DEFAULT 0,
  token  text NOT NULL DEFAULT ''
);
ALTER TABLE dualwrite.progress ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT ''`

// applySession returns the dedicated apply session, connecting and
// choosing the echo mode on first use or after a lost connection. The
// caller holds applyMu.
func (c *Connector) applySession(ctx context.Context) (*pgconn.PgConn, error) {
	if c.applyC != nil && !c.applyC.IsClosed() {
		return c.applyC, nil
	}
	pc, err := c.connectSession(ctx)
	if err != nil {
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot connect to PostgreSQL for apply; check that the server is running")
	}
	if err := createProgress(ctx, pc); err != nil {
		pc.Close(ctx)
		return nil, err
	}
	mode, origin, err := setupOrigin(ctx, pc, c.opts.Origin)
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	if mode != c.echo {
		if mode == echoOrigin {
			c.log.Info("echo suppression by replication origin", "origin", origin)
		} else {
			c.log.Warn("echo suppression by logical decoding message: this role cannot use replication origins (grant EXECUTE on pg_replication_origin_session_setup, _create and _oid, or use a superuser)", "origin", c.opts.Origin)
		}
	}
	c.echo = mode
	c.applyC = pc
	c.staged = nil // staging tables belong to the old session
	return pc, nil
}

func createProgress(ctx context.Context, pc *pgconn.PgConn) error {
	err := exec(ctx, pc, progressDDL)
	if code := pgCode(err); code == "23505" || code == "42P06" || code == "42P07" {
		// A concurrent session created it between our check and create.
		err = exec(ctx, pc, progressDDL)
	}
	if err != nil {
		return problem.Wrap(problem.MissingPrivilege, err, "cannot create dualwrite.progress; grant the role CREATE on the database or create the schema dualwrite for it")
	}
	return nil
}

// setupOrigin creates (if needed) and activates a replication origin in
// the session. An origin can be active in one session at a time, so when
// name is in use elsewhere "name.2", "name.3", ... are tried; capture drops
// all of them. Without the rights it falls back to message mode.
func setupOrigin(ctx context.Context, pc *pgconn.PgConn, name string) (echoMode, string, error) {
	for n := 1; n <= 32; n++ {
		origin := name
		if n > 1 {
			origin = fmt.Sprintf("%s.%d", name, n)
		}
		_, err := query(ctx, pc, "SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL", []uint32{25}, []any{origin})
		if pgCode(err) == "23505" {
			err = nil // created concurrently
		}
		if err == nil {
			_, err = query(ctx, pc, "SELECT pg_replication_origin_session_setup($1)", []uint32{25}, []any{origin})
		}
		switch {
		case err == nil:
			return echoOrigin, origin, nil
		case pgCode(err) == "42501": // insufficient_privilege
			return echoMessage, "", nil
		case pgCode(err) == "53400": // configuration_limit_exceeded: no free replication state
			return echoMessage, "", nil
		case pgCode(err) == "55006": // object_in_use: active in another session
			continue
		default:
			return echoUnknown, "", fmt.Errorf("set up replication origin %s: %w", origin, err)
		}
	}
	return echoMessage, "", nil
}

// Apply writes the batch and its position in one transaction.
func (c *Connector) Apply(ctx context.Context, b connector.Batch) (connector.Result, error) {
	if len(b.Writes) > connector.MaxBatchRows {
		return connector.Result{}, fmt.Errorf("apply %s: %d writes exceed the batch limit of %d; split the batch", b.Stream, len(b.Writes), connector.MaxBatchRows)
	}
	// Invariant: a malformed reference fails the batch before anything
	// is written.
	rs, err := connector.NewResolver(b.Writes)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply %s: %w", b.Stream, err)
	}
	infos := make([]*tableInfo, len(b.Writes))
	for i, w := range b.Writes {
		if i > 0 && infos[i-1] != nil && len(w.Expect) == 0 && len(b.Writes[i-1].Expect) == 0 && len(w.Return) == 0 && sameShape(b.Writes[i-1], w) {
			infos[i] = infos[i-1] // the same columns, already checked
			continue
		}
		ti, err := c.writeInfo(ctx, w)
		if err != nil {
			if b.Isolate {
				continue // reported per write below
			}
			return connector.Result{}, fmt.Errorf("apply %s: %w", b.Stream, err)
		}
		infos[i] = ti
	}

	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	pc, err := c.applySession(ctx)
	if err != nil {
		return connector.Result{}, fmt.Errorf("apply %s: %w", b.Stream, err)
	}
	res, err := c.applyTx(ctx, pc, b, infos, rs)
	if err != nil {
		c.staged = nil // staging tables created in the transaction are gone
		if !pc.IsClosed() && pc.TxStatus() != 'I' {
			if rbErr := exec(ctx, pc, "ROLLBACK"); rbErr != nil {
				pc.Close(context.Background())
			}
		}
		if pc.IsClosed() {
			c.applyC = nil
		}
		return connector.Result{}, fmt.Errorf("apply %s: %w", b.Stream, err)
	}
	return res, nil
}

// writeInfo resolves the write's table, re-describing it once when a
// column is unknown (the table may have been altered).
func (c *Connector) writeInfo(ctx context.Context, w connector.Write) (*tableInfo, error) {
	ti, err := c.info(ctx, w.Table)
	if err != nil {
		return nil, err
	}
	if hasColumns(ti, w.Key, w.Values, w.Expect) && checkColumns(ti, w.Return) == nil {
		return ti, nil
	}
	c.forget(w.Table)
	if ti, err = c.info(ctx, w.Table); err != nil {
		return nil, err
	}
	if err := checkColumns(ti, sortedKeys(w.Key), sortedKeys(w.Values), sortedKeys(w.Expect), w.Return); err != nil {
		return nil, problem.Wrap(problem.UnknownColumn, err, "the map names a column %s does not have; fix the map or add the column", w.Table)
	}
	return ti, nil
}

func (c *Connector) applyTx(ctx context.Context, pc *pgconn.PgConn, b connector.Batch, infos []*tableInfo, rs *connector.Resolver) (connector.Result, error) {
	c.txStaged = nil
	if err := exec(ctx, pc, "BEGIN ISOLATION LEVEL READ COMMITTED"); err != nil {
		return connector.Result{}, err
	}
	if c.echo == echoMessage {
		// Invariant: the engine's own writes carry the echo mark in the
		// same transaction, so capture on this side never reports them.
		if _, err := query(ctx, pc, "SELECT pg_logical_emit_message(true, $1, $2)", []uint32{25, 25}, []any{echoMessagePrefix, c.opts.Origin}); err != nil {
			return connector.Result{}, fmt.Errorf("mark transaction as the engine's: %w", err)
		}
	}
	if !b.Position.IsZero() {
		stored, err := c.readProgress(ctx, pc, b.Stream, true)
		if err != nil {
			return connector.Result{}, err
		}
		// Invariant: a batch not after the stream's applied position was
		// applied before; applying it again would undo later batches.
		if !stored.Less(b.Position) && !stored.IsZero() {
			if err := exec(ctx, pc, "ROLLBACK"); err != nil {
				return connector.Result{}, err
			}
			return connector.Result{Skipped: true}, nil
		}
	}
	var res connector.Result
	equal := b.Equal
	if equal == nil {
		equal = func(have, want any) bool { return reflect.DeepEqual(have, want) }
	}
	var read connector.ReadBack
	if rs != nil {
		read = c.readBack(pc)
	}
	// done records the outcome of write i for the resolver.
	done := func(i int, unmatched bool) {
		if unmatched {
			res.Unmatched = append(res.Unmatched, b.Writes[i].Ref)
			rs.Unmatched(i)
			return
		}
		rs.Wrote(i, i+1)
	}
	// one writes b.Writes[i] on its own; the error is one the batch
	// cannot survive.
	one := func(i int) error {
		w := b.Writes[i]
		if rs != nil {
			ws, err := rs.Prepare(ctx, i, i+1, read)
			if err != nil {
				if !b.Isolate || !errors.Is(err, connector.ErrRefUnresolved) {
					return err
				}
				rs.Failed(i)
				res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
				return nil
			}
			w = ws[0]
		}
		if !b.Isolate {
			if infos[i] == nil {
				return fmt.Errorf("write ref %d: table %s unknown", w.Ref, w.Table)
			}
			unmatched, err := c.applyWrite(ctx, pc, infos[i], w, equal)
			if err != nil {
				c.forget(w.Table)
				return err
			}
			done(i, unmatched)
			return nil
		}
		if infos[i] == nil {
			_, err := c.writeInfo(ctx, w)
			if err == nil {
				err = fmt.Errorf("table %s changed while applying", w.Table)
			}
			rs.Failed(i)
			res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: problem.Wrap(problem.RowWriteFailed, err, "write to %s failed; fix the table or the map", w.Table)})
			return nil
		}
		if err := exec(ctx, pc, "SAVEPOINT dw_write"); err != nil {
			return err
		}
		unmatched, err := c.applyWrite(ctx, pc, infos[i], w, equal)
		if err != nil {
			if pc.IsClosed() {
				return err
			}
			if rbErr := exec(ctx, pc, "ROLLBACK TO SAVEPOINT dw_write"); rbErr != nil {
				return rbErr
			}
			rs.Failed(i)
			res.Failed = append(res.Failed, connector.WriteError{Ref: w.Ref, Err: err})
			return nil
		}
		if err := exec(ctx, pc, "RELEASE SAVEPOINT dw_write"); err != nil {
			return err
		}
		// An unmatched write wrote nothing, so it did not fail: the
		// savepoint is simply released.
		done(i, unmatched)
		return nil
	}
	// Runs of plain upserts or inserts go in bulk; an isolated batch
	// splits a failing run around its bad rows, one that is not isolated
	// goes row by row and stops at the bad row. A run's Ref values are
	// resolved before it and its Return columns read after it, with one
	// keyed query when needed.
	bulk := func(lo, hi int) (bool, error) {
		ws := b.Writes[lo:hi]
		if rs != nil {
			var err error
			if ws, err = rs.Prepare(ctx, lo, hi, read); err != nil {
				if errors.Is(err, connector.ErrRefUnresolved) {
					return false, nil // the run in parts finds the write
				}
				return false, err
			}
		}
		err := c.bulkWrite(ctx, pc, infos[lo], ws)
		if err != nil && !pc.IsClosed() {
			c.log.Debug("bulk write failed; writing the run in parts", "table", b.Writes[lo].Table, "rows", hi-lo, "err", err)
			return false, nil
		}
		if err == nil {
			rs.Wrote(lo, hi)
		}
		return err == nil, err
	}
	runEnd := func(i int) int { return rs.RunEnd(i, bulkRun(b.Writes, infos, i)) }
	if err := connector.WriteRuns(len(b.Writes), runEnd, bulk, one, b.Isolate); err != nil {
		return connector.Result{}, err
	}
	if rs != nil {
		var err error
		if res.Returned, err = rs.Finish(ctx, read); err != nil {
			return connector.Result{}, err
		}
	}
	if !b.Position.IsZero() {
		// Invariant: the applied position commits in the same transaction
		// as the writes it covers.
		if err := c.writeProgress(ctx, pc, b.Stream, b.Position); err != nil {
			return connector.Result{}, err
		}
	}
	if err := exec(ctx, pc, "COMMIT"); err != nil {
		return connector.Result{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// hasColumns reports whether every column named in rows is a column of ti.
func hasColumns(ti *tableInfo, rows ...change.Row) bool {
	for _, r := range rows {
		for k := range r {
			if _, ok := ti.oids[k]; !ok {
				return false
			}
		}
	}
	return true
}

// checkKey rejects a write without a complete integration key.
func checkKey(w connector.Write) error {
	keyCols := sortedKeys(w.Key)
	if len(keyCols) == 0 {
		return problem.New(problem.KeyMissing, "write ref %d to %s has no key; the map must give an integration key", w.Ref, w.Table)
	}
	for _, k := range keyCols {
		if w.Key[k] == nil {
			return problem.New(problem.KeyMissing, "write ref %d to %s: key column %s is NULL; give the source row a value", w.Ref, w.Table, k)
		}
	}
	return nil
}

// applyWrite runs one write and reports whether it was a conditional
// write left unapplied because the row did not match. Unconditional
// writes take the plain path of write.
func (c *Connector) applyWrite(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, w connector.Write, equal func(have, want any) bool) (bool, error) {
	if w.Op == connector.InsertOnly {
		if err := checkKey(w); err != nil {
			return false, err
		}
		inserted, err := c.insertOnly(ctx, pc, ti, w)
		return !inserted && err == nil, err
	}
	if len(w.Expect) == 0 {
		return false, c.write(ctx, pc, ti, w)
	}
	if err := checkKey(w); err != nil {
		return false, err
	}
	// A row inserted concurrently between the check and the insert of
	// an absent row sends us round again, to check it.
	for attempt := 0; attempt < 3; attempt++ {
		found, matched, err := c.match(ctx, pc, ti, w, equal)
		switch {
		case err != nil:
			return false, err
		case found && !matched:
			return true, nil
		case found:
			return false, c.write(ctx, pc, ti, w)
		case w.Op != connector.Upsert:
			return false, nil // UpdateOnly and Delete ignore a missing row
		}
		inserted, err := c.insertOnly(ctx, pc, ti, w)
		if err != nil || inserted {
			return false, err
		}
	}
	return false, problem.New(problem.RowWriteFailed, "write ref %d to %s: the row keeps appearing and vanishing under concurrent writes; retry", w.Ref, w.Table)
}

// match locks the row with w's key and reports whether it exists and
// whether its current values of the Expect columns, decoded as Scan
// decodes them, equal w.Expect.
func (c *Connector) match(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, w connector.Write, equal func(have, want any) bool) (found, matched bool, err error) {
	a := &args{ti: ti}
	expCols := sortedKeys(w.Expect)
	sel := make([]string, len(expCols))
	for i, k := range expCols {
		sel[i] = qi(k)
	}
	keyCols := sortedKeys(w.Key)
	keyCond := make([]string, len(keyCols))
	for i, k := range keyCols {
		keyCond[i] = qi(k) + " = " + a.add(k, w.Key[k])
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s FOR UPDATE", strings.Join(sel, ", "), ti.qname, strings.Join(keyCond, " AND "))
	res, err := query(ctx, pc, q, a.oids, a.vals)
	if err != nil {
		return false, false, problem.Wrap(problem.RowWriteFailed, err, "write ref %d to %s: cannot read the row to compare with the expected values; fix the table or the map", w.Ref, w.Table)
	}
	if len(res.rows) == 0 {
		return false, false, nil
	}
	for i, k := range expCols {
		if !equal(res.rows[0][i], w.Expect[k]) {
			return true, false, nil
		}
	}
	return true, true, nil
}

// insertOnly inserts the row unless a row with its key exists, and
// reports whether it inserted. ON CONFLICT DO NOTHING also covers a row
// the application inserts concurrently.
func (c *Connector) insertOnly(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, w connector.Write) (bool, error) {
	a := &args{ti: ti}
	cols := sortedKeys(w.Key)
	qKey := make([]string, len(cols))
	for i, k := range cols {
		qKey[i] = qi(k)
	}
	for _, k := range sortedKeys(w.Values) {
		if _, isKey := w.Key[k]; !isKey {
			cols = append(cols, k)
		}
	}
	qc := make([]string, len(cols))
	ph := make([]string, len(cols))
	for i, k := range cols {
		v, isKey := w.Key[k]
		if !isKey {
			v = w.Values[k]
		}
		qc[i], ph[i] = qi(k), a.add(k, v)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO NOTHING",
		ti.qname, strings.Join(qc, ", "), strings.Join(ph, ", "), strings.Join(qKey, ", "))
	res, err := query(ctx, pc, q, a.oids, a.vals)
	if err != nil {
		return false, rejected(w, err)
	}
	return res.tag.RowsAffected() == 1, nil
}

// rejected wraps a database error of a write with DW3001 and a hint.
func rejected(w connector.Write, err error) error {
	hint := "fix the row or the target table's constraints, then retry"
	if pgCode(err) == "42P10" {
		hint = "the key has no unique index on the target table; add one or choose another key"
	}
	return problem.Wrap(problem.RowWriteFailed, err, "write ref %d to %s rejected; %s", w.Ref, w.Table, hint)
}

// write runs one write; the error carries DW3001 and the database's reason.
func (c *Connector) write(ctx context.Context, pc *pgconn.PgConn, ti *tableInfo, w connector.Write) error {
	if err := checkKey(w); err != nil {
		return err
	}
	keyCols := sortedKeys(w.Key)
	var setCols []string
	for _, k := range sortedKeys(w.Values) {
		if _, isKey := w.Key[k]; !isKey {
			setCols = append(setCols, k)
		}
	}
	a := &args{ti: ti}
	keyPH := make([]string, len(keyCols))
	keyCond := make([]string, len(keyCols))
	qKey := make([]string, len(keyCols))
	for i, k := range keyCols {
		keyPH[i] = a.add(k, w.Key[k])
		qKey[i] = qi(k)
		keyCond[i] = qi(k) + " = " + keyPH[i]
	}
	where := strings.Join(keyCond, " AND ")
	setPH := make([]string, len(setCols))
	set := make([]string, len(setCols))
	excluded := make([]string, len(setCols))
	qSet := make([]string, len(setCols))
	for i, k := range setCols {
		setPH[i] = a.add(k, w.Values[k])
		qSet[i] = qi(k)
		set[i] = qi(k) + " = " + setPH[i]
		excluded[i] = qi(k) + " = EXCLUDED." + qi(k)
	}

	var q string
	switch w.Op {
	case connector.Upsert:
		// Update first, insert only when no row has the key: an INSERT ...
		// ON CONFLICT alone would check NOT NULL columns the update does
		// not set before it finds the conflict. ON CONFLICT still covers a
		// row the application inserts concurrently.
		if len(setCols) == 0 {
			q = fmt.Sprintf("INSERT INTO %[1]s (%[2]s) SELECT %[3]s WHERE NOT EXISTS (SELECT 1 FROM %[1]s WHERE %[4]s) ON CONFLICT (%[2]s) DO NOTHING",
				ti.qname, strings.Join(qKey, ", "), strings.Join(keyPH, ", "), where)
		} else {
			q = fmt.Sprintf("WITH u AS (UPDATE %[1]s SET %[2]s WHERE %[3]s RETURNING 1) "+
				"INSERT INTO %[1]s (%[4]s, %[5]s) SELECT %[6]s, %[7]s WHERE NOT EXISTS (SELECT 1 FROM u) "+
				"ON CONFLICT (%[4]s) DO UPDATE SET %[8]s",
				ti.qname, strings.Join(set, ", "), where, strings.Join(qKey, ", "), strings.Join(qSet, ", "),
				strings.Join(keyPH, ", "), strings.Join(setPH, ", "), strings.Join(excluded, ", "))
		}
	case connector.UpdateOnly:
		if len(setCols) == 0 {
			return nil
		}
		q = fmt.Sprintf("UPDATE %s SET %s WHERE %s", ti.qname, strings.Join(set, ", "), where)
	case connector.Delete:
		q = fmt.Sprintf("DELETE FROM %s WHERE %s", ti.qname, where)
	default:
		return fmt.Errorf("write ref %d: unknown write op %d", w.Ref, w.Op)
	}
	if _, err := query(ctx, pc, q, a.oids, a.vals); err != nil {
		return rejected(w, err)
	}
	return nil
}

// AppliedPosition returns the last position recorded for stream.
func (c *Connector) AppliedPosition(ctx context.Context, stream string) (change.Position, error) {
	var p change.Position
	err := c.withConn(ctx, func(pc *pgconn.PgConn) error {
		var err error
		p, err = c.readProgress(ctx, pc, stream, false)
		if pgCode(err) == "42703" { // a progress table of an earlier version: add its source column
			if err = createProgress(ctx, pc); err == nil {
				p, err = c.readProgress(ctx, pc, stream, false)
			}
		}
		return err
	})
	if pgCode(err) == "42P01" || pgCode(err) == "3F000" { // nothing applied yet
		return change.Position{}, nil
	}
	if err != nil {
		return change.Position{}, fmt.Errorf("applied position: %w", err)
	}
	return p, nil
}

var errStopped = errors.New("capture stopped")

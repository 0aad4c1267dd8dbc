package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// maxPollRows bounds the change rows one poll reads (see the package doc).
const maxPollRows = 5000

// triggerPrefix names the capture triggers; Release drops every trigger
// with it.
const triggerPrefix = "_dw_trg_"

// jsonArgsPerObject keeps json_object below SQLite's function argument
// limit; wider tables merge several objects with json_patch, which is safe
// because NULL is encoded as "n", never as JSON null.
const jsonArgsPerObject = 60

var captureDDL = []string{
	`CREATE TABLE IF NOT EXISTS _dw_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, op TEXT NOT NULL, old TEXT, new TEXT, origin INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS _dw_capture_state (id INTEGER PRIMARY KEY CHECK (id = 1), acked INTEGER NOT NULL)`,
	`INSERT OR IGNORE INTO _dw_capture_state (id, acked) VALUES (1, 0)`,
}

// Capture installs (or refreshes) the capture triggers on opts.Tables,
// removes those of tables no longer watched, and returns a capturer
// positioned after opts.From.
func (c *Connector) Capture(ctx context.Context, opts connector.CaptureOptions) (connector.Capturer, error) {
	if len(opts.Tables) == 0 {
		return nil, errors.New("start capture: no tables to watch")
	}
	if err := c.installTriggers(ctx, opts.Tables, true); err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	start, err := c.startSeq(ctx, opts.From)
	if err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	cp := &Capturer{c: c, tables: map[string]bool{}, seq: start}
	for _, t := range opts.Tables {
		cp.tables[t] = true
	}
	if err := c.reader.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&cp.schema); err != nil {
		return nil, fmt.Errorf("start capture: read schema version: %w", err)
	}
	c.log.Info("sqlite capture started", "tables", opts.Tables, "position", start)
	return cp, nil
}

// startSeq returns the sequence number capture resumes after.
func (c *Connector) startSeq(ctx context.Context, from change.Position) (int64, error) {
	var last, acked int64
	err := c.reader.QueryRowContext(ctx, `SELECT
		max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '_dw_changes'), 0), COALESCE((SELECT max(seq) FROM _dw_changes), 0)),
		(SELECT acked FROM _dw_capture_state WHERE id = 1)`).Scan(&last, &acked)
	if err != nil {
		return 0, fmt.Errorf("read change log position: %w", err)
	}
	if from.IsZero() {
		// Like a replication slot: resume after what was acknowledged, so
		// changes captured but not yet acknowledged are delivered again.
		return acked, nil
	}
	// Positions are sequence numbers; one beyond the log's end comes from
	// a log that was released (and restarted from 1) or another database,
	// and one before the acknowledged position lost the trimmed rows.
	if from.LSN > uint64(last) || from.LSN < uint64(acked) {
		return 0, fmt.Errorf("resume from %v (change log holds %d..%d): %w", from, acked, last, connector.ErrLogPurged)
	}
	return int64(from.LSN), nil
}

// installTriggers makes the capture triggers match the tables' current
// columns, in one transaction so that no change slips between a drop and
// a create. With prune it also drops the triggers of every other table.
func (c *Connector) installTriggers(ctx context.Context, tables []string, prune bool) error {
	want := map[string]string{} // trigger name → SQL
	for _, t := range tables {
		ti, err := c.table(ctx, t)
		if err != nil {
			return err
		}
		for name, sql := range triggerSQL(ti) {
			want[name] = sql
		}
	}
	tx, err := c.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("install triggers: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, s := range captureDDL {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create change table: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' AND substr(name, 1, ?) = ?`, len(triggerPrefix), triggerPrefix)
	if err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	have := map[string]string{}
	var drop []string
	for rows.Next() {
		var name, tbl, sql string
		if err := rows.Scan(&name, &tbl, &sql); err != nil {
			rows.Close()
			return fmt.Errorf("list triggers: %w", err)
		}
		have[name] = sql
		if _, ok := want[name]; !ok && prune {
			drop = append(drop, name)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	changed := len(drop)
	for name, sql := range want {
		if have[name] == sql {
			continue
		}
		if _, ok := have[name]; ok {
			drop = append(drop, name)
		}
		changed++
	}
	for _, name := range drop {
		if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quote(name)); err != nil {
			return fmt.Errorf("drop trigger %s: %w", name, err)
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if have[name] == want[name] {
			continue
		}
		if _, err := tx.ExecContext(ctx, want[name]); err != nil {
			return fmt.Errorf("create trigger %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("install triggers: commit: %w", err)
	}
	if changed > 0 {
		c.log.Info("sqlite capture triggers updated", "tables", tables, "changed", changed)
	}
	return nil
}

// triggerSQL returns the three capture triggers of a table by name. The
// SQL is deterministic, so comparing it with sqlite_schema tells whether a
// trigger is current.
func triggerSQL(ti tableInfo) map[string]string {
	image := func(ref string) string {
		var objs []string
		for start := 0; start < len(ti.Columns); start += jsonArgsPerObject / 2 {
			end := min(start+jsonArgsPerObject/2, len(ti.Columns))
			var args []string
			for _, col := range ti.Columns[start:end] {
				v := ref + "." + quote(col.Name)
				args = append(args, literal(col.Name), fmt.Sprintf(
					"CASE typeof(%[1]s) WHEN 'integer' THEN %[1]s WHEN 'real' THEN 'f' || printf('%%!.17g', %[1]s) WHEN 'text' THEN 't' || %[1]s WHEN 'blob' THEN 'x' || hex(%[1]s) ELSE 'n' END", v))
			}
			objs = append(objs, "json_object("+strings.Join(args, ", ")+")")
		}
		out := objs[0]
		for _, o := range objs[1:] {
			out = "json_patch(" + out + ", " + o + ")"
		}
		return out
	}
	body := func(op, old, new string) string {
		return fmt.Sprintf("INSERT INTO _dw_changes (tbl, op, old, new, origin, at) VALUES (%s, '%s', %s, %s, (SELECT active FROM _dw_marker WHERE id = 1), strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now'))",
			literal(ti.Name), op, old, new)
	}
	make1 := func(suffix, event, stmt string) (string, string) {
		name := triggerPrefix + ti.Name + "_" + suffix
		return name, fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s FOR EACH ROW BEGIN %s; END", quote(name), event, quote(ti.Name), stmt)
	}
	out := map[string]string{}
	n, s := make1("ins", "INSERT", body("I", "NULL", image("NEW")))
	out[n] = s
	n, s = make1("upd", "UPDATE", body("U", image("OLD"), image("NEW")))
	out[n] = s
	n, s = make1("del", "DELETE", body("D", image("OLD"), "NULL"))
	out[n] = s
	return out
}

// Release drops the capture triggers and the change log.
func (c *Connector) Release(ctx context.Context) error {
	tx, err := c.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release capture: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'trigger' AND substr(name, 1, ?) = ?`, len(triggerPrefix), triggerPrefix)
	if err != nil {
		return fmt.Errorf("release capture: list triggers: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("release capture: list triggers: %w", err)
		}
		names = append(names, n)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("release capture: list triggers: %w", err)
	}
	for _, n := range names {
		if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quote(n)); err != nil {
			return fmt.Errorf("release capture: drop trigger %s: %w", n, err)
		}
	}
	for _, s := range []string{`DROP TABLE IF EXISTS _dw_changes`, `DROP TABLE IF EXISTS _dw_capture_state`} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("release capture: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("release capture: commit: %w", err)
	}
	c.log.Info("sqlite capture released", "triggers", len(names))
	return nil
}

// Capturer reads the change table. Next and Ack may be called from
// different goroutines; Next is not meant to be called concurrently.
type Capturer struct {
	c      *Connector
	tables map[string]bool

	mu     sync.Mutex
	seq    int64 // last sequence number returned or skipped
	schema int64
	closed bool

	echoes atomic.Int64
}

// EchoesSuppressed returns the number of change rows written by the
// engine's own Apply that the capturer dropped.
func (cp *Capturer) EchoesSuppressed() int64 { return cp.echoes.Load() }

// Next returns the changes committed since the previous call as one
// transaction, polling every PollInterval until there are some.
func (cp *Capturer) Next(ctx context.Context) (change.Tx, error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return change.Tx{}, ctx.Err()
		case <-timer.C:
		}
		tx, ok, err := cp.poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return change.Tx{}, ctx.Err()
			}
			return change.Tx{}, err
		}
		if ok {
			return tx, nil
		}
		timer.Reset(cp.c.opts.PollInterval)
	}
}

type changeRow struct {
	seq      int64
	tbl, op  string
	old, new sql.NullString
	origin   int64
	at       string
}

func (cp *Capturer) poll(ctx context.Context) (change.Tx, bool, error) {
	cp.mu.Lock()
	if cp.closed {
		cp.mu.Unlock()
		return change.Tx{}, false, errors.New("capture: capturer is closed")
	}
	after := cp.seq
	cp.mu.Unlock()
	c := cp.c

	if err := cp.refreshTriggers(ctx); err != nil {
		return change.Tx{}, false, err
	}
	// One SELECT reads one snapshot: only whole committed transactions.
	rows, err := c.reader.QueryContext(ctx, `SELECT seq, tbl, op, old, new, origin, at FROM _dw_changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, maxPollRows)
	if err != nil {
		return change.Tx{}, false, fmt.Errorf("capture: read change log: %w", err)
	}
	var batch []changeRow
	for rows.Next() {
		var r changeRow
		if err := rows.Scan(&r.seq, &r.tbl, &r.op, &r.old, &r.new, &r.origin, &r.at); err != nil {
			rows.Close()
			return change.Tx{}, false, fmt.Errorf("capture: read change log: %w", err)
		}
		batch = append(batch, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return change.Tx{}, false, fmt.Errorf("capture: read change log: %w", err)
	}
	if len(batch) == 0 {
		return change.Tx{}, false, nil
	}

	var tx change.Tx
	var echoes int64
	for _, r := range batch {
		if r.origin != 0 {
			echoes++ // the engine's own write: never reported
			continue
		}
		if !cp.tables[r.tbl] {
			continue // a table no longer watched, or watched by another capturer
		}
		ch, err := cp.decode(ctx, r)
		if err != nil {
			return change.Tx{}, false, fmt.Errorf("capture: change %d of %s: %w", r.seq, r.tbl, err)
		}
		if at, ok := parseTime(r.at); ok {
			ch.At = at
			if at.After(tx.CommitTime) {
				tx.CommitTime = at
			}
		}
		tx.Changes = append(tx.Changes, ch)
	}
	last := batch[len(batch)-1].seq
	cp.echoes.Add(echoes)
	cp.mu.Lock()
	cp.seq = last
	cp.mu.Unlock()
	if echoes > 0 {
		// Echo rows are never delivered, so nothing needs them any more.
		if _, err := c.writer.ExecContext(ctx, `DELETE FROM _dw_changes WHERE origin <> 0 AND seq <= ?`, last); err != nil {
			c.log.Warn("sqlite capture could not trim echo rows", "err", err)
		}
	}
	if len(tx.Changes) == 0 {
		return change.Tx{}, false, nil
	}
	// Invariant: the position is the end of the poll, which holds whole
	// source transactions (see the package doc).
	tx.Position = change.Position{LSN: uint64(last)}
	tx.ID = fmt.Sprintf("seq %d-%d", batch[0].seq, last)
	if tx.CommitTime.IsZero() {
		tx.CommitTime = c.opts.Now().UTC()
	}
	return tx, true, nil
}

// refreshTriggers recreates the triggers when the schema changed (a column
// was added), so that later changes carry the new columns.
func (cp *Capturer) refreshTriggers(ctx context.Context) error {
	var version int64
	if err := cp.c.reader.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("capture: read schema version: %w", err)
	}
	cp.mu.Lock()
	same := version == cp.schema
	cp.mu.Unlock()
	if same {
		return nil
	}
	tables := make([]string, 0, len(cp.tables))
	for t := range cp.tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	// No pruning here: a schema change must not make this capturer remove
	// triggers that a later Capture installed for other tables.
	if err := cp.c.installTriggers(ctx, tables, false); err != nil {
		return fmt.Errorf("capture: refresh triggers after a schema change: %w", err)
	}
	if err := cp.c.reader.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("capture: read schema version: %w", err)
	}
	cp.mu.Lock()
	cp.schema = version
	cp.mu.Unlock()
	return nil
}

func (cp *Capturer) decode(ctx context.Context, r changeRow) (change.Change, error) {
	ch := change.Change{Table: r.tbl}
	switch r.op {
	case "I":
		ch.Op = change.Insert
	case "U":
		ch.Op = change.Update
	case "D":
		ch.Op = change.Delete
	default:
		return ch, fmt.Errorf("unknown op %q", r.op)
	}
	ti, err := cp.c.table(ctx, r.tbl)
	if err != nil && !errors.Is(err, connector.ErrNoTable) {
		return ch, err
	}
	if r.old.Valid {
		if ch.Old, err = decodeImage(ti, r.old.String); err != nil {
			return ch, fmt.Errorf("old row: %w", err)
		}
		// Triggers see every column; a column missing from the image was
		// added after the trigger was created.
		ch.OldComplete = len(missing(ti, ch.Old)) == 0
	}
	if r.new.Valid {
		if ch.New, err = decodeImage(ti, r.new.String); err != nil {
			return ch, fmt.Errorf("new row: %w", err)
		}
		ch.Unchanged = missing(ti, ch.New)
	}
	return ch, nil
}

func missing(ti tableInfo, row change.Row) []string {
	var out []string
	for _, col := range ti.Columns {
		if _, ok := row[col.Name]; !ok {
			out = append(out, col.Name)
		}
	}
	return out
}

// decodeImage reads a row image written by the triggers (see the package
// doc) and converts each value by its column's kind.
func decodeImage(ti tableInfo, image string) (change.Row, error) {
	dec := json.NewDecoder(strings.NewReader(image))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode row image: %w", err)
	}
	row := make(change.Row, len(raw))
	for name, rv := range raw {
		stored, err := untag(rv)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		ci, ok := ti.cols[name]
		if !ok {
			row[name] = stored // a column dropped since: keep its stored form
			if b, isBytes := stored.([]byte); isBytes {
				row[name] = bytes.Clone(b)
			}
			continue
		}
		if row[name], err = fromStored(ci, stored); err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
	}
	return row, nil
}

// untag turns a trigger-encoded JSON value into the value SQLite stored.
func untag(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.Number:
		return strconv.ParseInt(string(x), 10, 64)
	case string:
		if x == "" {
			return nil, errors.New("empty tagged value")
		}
		body := x[1:]
		switch x[0] {
		case 'n':
			return nil, nil
		case 't':
			return body, nil
		case 'f':
			return strconv.ParseFloat(body, 64)
		case 'x':
			return hex.DecodeString(body)
		}
	}
	return nil, fmt.Errorf("unexpected value %v in change row", v)
}

// Ack deletes the change rows up to pos: they are durable downstream.
func (cp *Capturer) Ack(ctx context.Context, pos change.Position) error {
	// Invariant: the change log is trimmed only up to what the caller
	// acknowledged as durable.
	tx, err := cp.c.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ack %v: begin: %w", pos, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `DELETE FROM _dw_changes WHERE seq <= ?`, int64(pos.LSN)); err != nil {
		return fmt.Errorf("ack %v: trim change log: %w", pos, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE _dw_capture_state SET acked = max(acked, ?) WHERE id = 1`, int64(pos.LSN)); err != nil {
		return fmt.Errorf("ack %v: record position: %w", pos, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ack %v: commit: %w", pos, err)
	}
	return nil
}

// Close stops the capturer. The triggers stay (see Connector.Release), so
// changes made while nobody captures are kept for the next capturer.
func (cp *Capturer) Close() error {
	cp.mu.Lock()
	cp.closed = true
	cp.mu.Unlock()
	return nil
}

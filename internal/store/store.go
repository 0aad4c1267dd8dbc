// Package store is the engine's control store: map statuses, capture
// positions, initial-sync progress and errors, parked catch-up errors, the
// conflict shadow and the activity log. It is a SQLite file in the data
// directory, so the engine's own state needs no service.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/dualwrite/dualwrite/internal/change"
)

// Store is the control store. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS maps (
	name TEXT PRIMARY KEY,
	status TEXT NOT NULL,
	master TEXT NOT NULL DEFAULT '',
	skip_initial_sync INTEGER NOT NULL DEFAULT 0,
	updated_at TEXT NOT NULL,
	last_sync TEXT NOT NULL DEFAULT '',
	init_done INTEGER NOT NULL DEFAULT 0,
	init_total INTEGER NOT NULL DEFAULT 0,
	queue_cursor INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS side_positions (
	side TEXT PRIMARY KEY,
	lsn INTEGER NOT NULL,
	sub INTEGER NOT NULL,
	token TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS init_progress (
	map TEXT NOT NULL,
	pass TEXT NOT NULL,
	after_key TEXT NOT NULL,
	done INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (map, pass)
);
CREATE TABLE IF NOT EXISTS init_errors (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	map TEXT NOT NULL,
	direction TEXT NOT NULL,
	key TEXT NOT NULL,
	code TEXT NOT NULL,
	message TEXT NOT NULL,
	at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS init_errors_map ON init_errors(map);
CREATE TABLE IF NOT EXISTS init_deferred (
	map TEXT NOT NULL,
	direction TEXT NOT NULL,
	key TEXT NOT NULL,
	PRIMARY KEY (map, direction, key)
);
CREATE TABLE IF NOT EXISTS catchup_errors (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	map TEXT NOT NULL,
	direction TEXT NOT NULL,
	key TEXT NOT NULL,
	code TEXT NOT NULL,
	message TEXT NOT NULL,
	at TEXT NOT NULL,
	changes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catchup_errors_map ON catchup_errors(map, key);
CREATE TABLE IF NOT EXISTS shadow (
	map TEXT NOT NULL,
	key TEXT NOT NULL,
	state TEXT NOT NULL,
	PRIMARY KEY (map, key)
);
CREATE TABLE IF NOT EXISTS activity (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	map TEXT NOT NULL,
	at TEXT NOT NULL,
	actor TEXT NOT NULL,
	kind TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activity_map ON activity(map, id);
`

const timeFormat = time.RFC3339Nano

// Open opens (creating if needed) the control store in dir.
func Open(ctx context.Context, dir string, now func() time.Time) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "control.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("open control store %s: %w", path, err)
	}
	// One connection: SQLite has one writer, and this avoids busy errors
	// between the engine's own goroutines.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema+pairsSchema+ownershipSchema+alertSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create control store schema in %s: %w", path, err)
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) ts() string { return s.now().UTC().Format(timeFormat) }

func parseTime(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, _ := time.Parse(timeFormat, v)
	return t
}

// MapState is the persisted state of a map.
type MapState struct {
	Name            string
	Status          string
	Master          string
	SkipInitialSync bool
	UpdatedAt       time.Time
	LastSync        time.Time
	InitDone        int64
	InitTotal       int64
	QueueCursor     uint64
}

// MapStates returns every persisted map state by name.
func (s *Store) MapStates(ctx context.Context) (map[string]MapState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, status, master, skip_initial_sync, updated_at, last_sync, init_done, init_total, queue_cursor FROM maps`)
	if err != nil {
		return nil, fmt.Errorf("read map states: %w", err)
	}
	defer rows.Close()
	out := map[string]MapState{}
	for rows.Next() {
		var m MapState
		var skip int
		var upd, last string
		if err := rows.Scan(&m.Name, &m.Status, &m.Master, &skip, &upd, &last, &m.InitDone, &m.InitTotal, &m.QueueCursor); err != nil {
			return nil, fmt.Errorf("read map states: %w", err)
		}
		m.SkipInitialSync = skip != 0
		m.UpdatedAt, m.LastSync = parseTime(upd), parseTime(last)
		out[m.Name] = m
	}
	return out, rows.Err()
}

// SetStatus persists a map's status (and the run options that go with it).
func (s *Store) SetStatus(ctx context.Context, name, status, master string, skipInit bool) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO maps(name, status, master, skip_initial_sync, updated_at) VALUES (?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET status=excluded.status, master=excluded.master, skip_initial_sync=excluded.skip_initial_sync, updated_at=excluded.updated_at`,
		name, status, master, boolInt(skipInit), s.ts())
	if err != nil {
		return fmt.Errorf("save status of map %s: %w", name, err)
	}
	return nil
}

// TouchSync records that the map applied a change now.
func (s *Store) TouchSync(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE maps SET last_sync=? WHERE name=?`, s.ts(), name)
	return err
}

// SetInitCounts records the initial sync's progress counters.
func (s *Store) SetInitCounts(ctx context.Context, name string, done, total int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE maps SET init_done=?, init_total=? WHERE name=?`, done, total, name)
	return err
}

// SetQueueCursor records the last queue sequence replayed for a map.
func (s *Store) SetQueueCursor(ctx context.Context, name string, seq uint64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE maps SET queue_cursor=? WHERE name=?`, seq, name)
	return err
}

// SidePosition returns the last acknowledged capture position of a side.
func (s *Store) SidePosition(ctx context.Context, side string) (change.Position, error) {
	var p change.Position
	err := s.db.QueryRowContext(ctx, `SELECT lsn, sub, token FROM side_positions WHERE side=?`, side).Scan(&p.LSN, &p.Sub, &p.Token)
	if errors.Is(err, sql.ErrNoRows) {
		return change.Position{}, nil
	}
	if err != nil {
		return p, fmt.Errorf("read capture position of side %s: %w", side, err)
	}
	return p, nil
}

// SetSidePosition records a side's acknowledged capture position.
func (s *Store) SetSidePosition(ctx context.Context, side string, p change.Position) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO side_positions(side, lsn, sub, token) VALUES (?,?,?,?)
		ON CONFLICT(side) DO UPDATE SET lsn=excluded.lsn, sub=excluded.sub, token=excluded.token`, side, p.LSN, p.Sub, p.Token)
	if err != nil {
		return fmt.Errorf("save capture position of side %s: %w", side, err)
	}
	return nil
}

// ClearSidePosition forgets a side's position (its log was released).
func (s *Store) ClearSidePosition(ctx context.Context, side string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM side_positions WHERE side=?`, side)
	return err
}

// InitProgress returns the persisted progress of one initial sync pass:
// the last key handled (JSON) and whether the pass finished.
func (s *Store) InitProgress(ctx context.Context, name, pass string) (afterKey string, done bool, err error) {
	var d int
	err = s.db.QueryRowContext(ctx, `SELECT after_key, done FROM init_progress WHERE map=? AND pass=?`, name, pass).Scan(&afterKey, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return afterKey, d != 0, err
}

// SetInitProgress records an initial sync pass's progress.
func (s *Store) SetInitProgress(ctx context.Context, name, pass, afterKey string, done bool) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO init_progress(map, pass, after_key, done) VALUES (?,?,?,?)
		ON CONFLICT(map, pass) DO UPDATE SET after_key=excluded.after_key, done=excluded.done`, name, pass, afterKey, boolInt(done))
	if err != nil {
		return fmt.Errorf("save initial sync progress of map %s: %w", name, err)
	}
	return nil
}

// ResetInit forgets a map's initial sync progress, deferred rows and errors,
// for a fresh run.
func (s *Store) ResetInit(ctx context.Context, name string) error {
	for _, q := range []string{`DELETE FROM init_progress WHERE map=?`, `DELETE FROM init_errors WHERE map=?`, `DELETE FROM init_deferred WHERE map=?`} {
		if _, err := s.db.ExecContext(ctx, q, name); err != nil {
			return fmt.Errorf("reset initial sync of map %s: %w", name, err)
		}
	}
	return nil
}

// RowError is a recorded initial sync or catch-up error.
type RowError struct {
	ID        int64
	Map       string
	Direction string
	Key       string
	Code      string
	Message   string
	At        time.Time
	Changes   []QueuedChange
}

// QueuedChange is one parked change of a catch-up error.
type QueuedChange struct {
	Side       string          `json:"side"`
	CommitTime time.Time       `json:"commit_time"`
	Change     change.Change   `json:"change"`
	Position   change.Position `json:"position"`
}

// AddInitError records a failed initial sync row.
//
// A row keeps one error per direction: a chunk read again after a crash
// (its progress was not saved) replaces the errors it recorded before.
func (s *Store) AddInitError(ctx context.Context, e RowError) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record initial sync error of map %s: %w", e.Map, err)
	}
	defer tx.Rollback()
	if _, err = tx.ExecContext(ctx, `DELETE FROM init_errors WHERE map=? AND direction=? AND key=? AND key<>'?'`, e.Map, e.Direction, e.Key); err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO init_errors(map, direction, key, code, message, at) VALUES (?,?,?,?,?,?)`,
			e.Map, e.Direction, e.Key, e.Code, e.Message, s.ts())
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("record initial sync error of map %s: %w", e.Map, err)
	}
	return nil
}

// InitErrors lists a map's initial sync errors, oldest first.
func (s *Store) InitErrors(ctx context.Context, name string) ([]RowError, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, map, direction, key, code, message, at FROM init_errors WHERE map=? ORDER BY id`, name)
	if err != nil {
		return nil, fmt.Errorf("read initial sync errors of map %s: %w", name, err)
	}
	defer rows.Close()
	var out []RowError
	for rows.Next() {
		var e RowError
		var at string
		if err := rows.Scan(&e.ID, &e.Map, &e.Direction, &e.Key, &e.Code, &e.Message, &at); err != nil {
			return nil, err
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// DeleteInitError removes one initial sync error (its row now succeeded).
func (s *Store) DeleteInitError(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM init_errors WHERE id=?`, id)
	return err
}

// CountErrors returns the number of initial sync and catch-up errors of a map.
func (s *Store) CountErrors(ctx context.Context, name string) (initErrs, catchUp int64, err error) {
	if err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM init_errors WHERE map=?`, name).Scan(&initErrs); err != nil {
		return
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM catchup_errors WHERE map=?`, name).Scan(&catchUp)
	return
}

// AddDeferred records a row whose self-referencing lookup is resolved in
// the second pass.
func (s *Store) AddDeferred(ctx context.Context, name, direction, key string) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO init_deferred(map, direction, key) VALUES (?,?,?)`, name, direction, key)
	return err
}

// Deferred lists the deferred rows of a map and direction.
func (s *Store) Deferred(ctx context.Context, name, direction string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key FROM init_deferred WHERE map=? AND direction=? ORDER BY key`, name, direction)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteDeferred removes a resolved deferred row.
func (s *Store) DeleteDeferred(ctx context.Context, name, direction, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM init_deferred WHERE map=? AND direction=? AND key=?`, name, direction, key)
	return err
}

// ParkChange adds a change to the catch-up error of its key, creating the
// error when the key has none. Later changes to a parked key wait behind
// the first one, in order.
func (s *Store) ParkChange(ctx context.Context, name, direction, key, code, message string, c QueuedChange) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("park change of map %s: %w", name, err)
	}
	defer tx.Rollback()
	var id int64
	var raw string
	err = tx.QueryRowContext(ctx, `SELECT id, changes FROM catchup_errors WHERE map=? AND key=? ORDER BY id LIMIT 1`, name, key).Scan(&id, &raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		enc, err := json.Marshal([]QueuedChange{c})
		if err != nil {
			return fmt.Errorf("park change of map %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO catchup_errors(map, direction, key, code, message, at, changes) VALUES (?,?,?,?,?,?,?)`,
			name, direction, key, code, message, s.ts(), string(enc)); err != nil {
			return fmt.Errorf("park change of map %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("park change of map %s: %w", name, err)
	default:
		var list []QueuedChange
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return fmt.Errorf("park change of map %s: decode parked changes: %w", name, err)
		}
		list = append(list, c)
		enc, err := json.Marshal(list)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE catchup_errors SET changes=? WHERE id=?`, string(enc), id); err != nil {
			return fmt.Errorf("park change of map %s: %w", name, err)
		}
	}
	return tx.Commit()
}

// CatchUpErrors lists a map's catch-up errors with their parked changes.
func (s *Store) CatchUpErrors(ctx context.Context, name string) ([]RowError, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, map, direction, key, code, message, at, changes FROM catchup_errors WHERE map=? ORDER BY id`, name)
	if err != nil {
		return nil, fmt.Errorf("read catch-up errors of map %s: %w", name, err)
	}
	defer rows.Close()
	var out []RowError
	for rows.Next() {
		var e RowError
		var at, raw string
		if err := rows.Scan(&e.ID, &e.Map, &e.Direction, &e.Key, &e.Code, &e.Message, &at, &raw); err != nil {
			return nil, err
		}
		e.At = parseTime(at)
		if err := json.Unmarshal([]byte(raw), &e.Changes); err != nil {
			return nil, fmt.Errorf("decode catch-up error %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ParkedKeys returns the keys of a map that have a catch-up error.
func (s *Store) ParkedKeys(ctx context.Context, name string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key FROM catchup_errors WHERE map=?`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// DeleteCatchUpError removes a catch-up error with its parked changes.
func (s *Store) DeleteCatchUpError(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM catchup_errors WHERE id=?`, id)
	return err
}

// UpdateCatchUpError replaces the parked changes and message of an error
// after a partly successful retry.
func (s *Store) UpdateCatchUpError(ctx context.Context, id int64, code, message string, changes []QueuedChange) error {
	enc, err := json.Marshal(changes)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `UPDATE catchup_errors SET code=?, message=?, changes=?, at=? WHERE id=?`, code, message, string(enc), s.ts(), id)
	return err
}

// Shadow returns the conflict shadow of a key (nil when none).
func (s *Store) Shadow(ctx context.Context, name, key string) ([]byte, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT state FROM shadow WHERE map=? AND key=?`, name, key).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read conflict shadow of map %s: %w", name, err)
	}
	return []byte(raw), nil
}

// Shadows returns the conflict shadows of several keys in one query per
// 500 keys; a key without one is absent from the result.
func (s *Store) Shadows(ctx context.Context, name string, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for len(keys) > 0 {
		part := keys[:min(len(keys), 500)]
		keys = keys[len(part):]
		args := make([]any, 0, len(part)+1)
		args = append(args, name)
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT key, state FROM shadow WHERE map=? AND key IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read conflict shadows of map %s: %w", name, err)
		}
		for rows.Next() {
			var k, raw string
			if err := rows.Scan(&k, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read conflict shadows of map %s: %w", name, err)
			}
			out[k] = []byte(raw)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read conflict shadows of map %s: %w", name, err)
		}
	}
	return out, nil
}

// SetShadow stores the conflict shadow of a key.
func (s *Store) SetShadow(ctx context.Context, name, key string, state []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO shadow(map, key, state) VALUES (?,?,?) ON CONFLICT(map, key) DO UPDATE SET state=excluded.state`, name, key, string(state))
	if err != nil {
		return fmt.Errorf("save conflict shadow of map %s: %w", name, err)
	}
	return nil
}

// SetShadows stores several records' conflict shadows in one transaction,
// up to 300 per statement.
func (s *Store) SetShadows(ctx context.Context, name string, states map[string][]byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save conflict shadows of map %s: %w", name, err)
	}
	defer tx.Rollback()
	args := make([]any, 0, 3*min(len(states), 300))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		q := `INSERT INTO shadow(map, key, state) VALUES (?,?,?)` + strings.Repeat(",(?,?,?)", len(args)/3-1) +
			` ON CONFLICT(map, key) DO UPDATE SET state=excluded.state`
		_, err := tx.ExecContext(ctx, q, args...)
		args = args[:0]
		return err
	}
	for key, state := range states {
		args = append(args, name, key, string(state))
		if len(args) == 3*300 {
			if err := flush(); err != nil {
				return fmt.Errorf("save conflict shadows of map %s: %w", name, err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("save conflict shadows of map %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save conflict shadows of map %s: %w", name, err)
	}
	return nil
}

// Activity is one activity log entry.
type Activity struct {
	ID      int64
	Map     string
	At      time.Time
	Actor   string
	Kind    string
	Message string
}

// Log appends an activity log entry.
func (s *Store) Log(ctx context.Context, name, actor, kind, message string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO activity(map, at, actor, kind, message) VALUES (?,?,?,?,?)`, name, s.ts(), actor, kind, message)
	if err != nil {
		return fmt.Errorf("write activity log of map %s: %w", name, err)
	}
	return nil
}

// Activity returns a map's latest activity entries, newest first.
func (s *Store) Activity(ctx context.Context, name string, limit int) ([]Activity, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, map, at, actor, kind, message FROM activity WHERE map=? ORDER BY id DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("read activity log of map %s: %w", name, err)
	}
	defer rows.Close()
	var out []Activity
	for rows.Next() {
		var a Activity
		var at string
		if err := rows.Scan(&a.ID, &a.Map, &at, &a.Actor, &a.Kind, &a.Message); err != nil {
			return nil, err
		}
		a.At = parseTime(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
)

// The record pairing (docs/adr/20261204-record-identity.md): for every
// map, which record on the left is which record on the right, with the
// columns other maps' lookups reference on each side (the key, a
// surrogate the target generated). pair_refs indexes each record by every
// column set lookups match on, so a reference resolves in one query.
const pairsSchema = `
CREATE TABLE IF NOT EXISTS pairs (
	map TEXT NOT NULL,
	key TEXT NOT NULL,
	left_row TEXT NOT NULL,
	right_row TEXT NOT NULL,
	PRIMARY KEY (map, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pair_refs (
	map TEXT NOT NULL,
	side INTEGER NOT NULL,
	cols TEXT NOT NULL,
	val TEXT NOT NULL,
	key TEXT NOT NULL,
	PRIMARY KEY (map, side, cols, val)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pair_refs_key ON pair_refs(map, key);
CREATE TABLE IF NOT EXISTS catchup_waits (
	map TEXT NOT NULL,
	key TEXT NOT NULL,
	ref_map TEXT NOT NULL,
	side INTEGER NOT NULL,
	cols TEXT NOT NULL,
	val TEXT NOT NULL,
	PRIMARY KEY (map, key, ref_map, side, cols, val)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS catchup_waits_ref ON catchup_waits(ref_map, side, cols, val);
`

// Pair is one record's pairing: its canonical key and its identity
// columns on each side.
type Pair struct {
	Key  string
	Rows [2]change.Row
}

// PairRef is one index entry of a record: the values of a column set on
// one side, as a fingerprint string.
type PairRef struct {
	Side int
	Cols string
	Val  string
}

// PairsGet returns the pairings of the given keys of a map; a key without
// one is absent.
func (s *Store) PairsGet(ctx context.Context, name string, keys []string) (map[string]Pair, error) {
	out := make(map[string]Pair, len(keys))
	err := inChunks(keys, func(part []string) error {
		args := append([]any{name}, anys(part)...)
		rows, err := s.db.QueryContext(ctx, `SELECT key, left_row, right_row FROM pairs WHERE map=? AND key IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, l, r string
			if err := rows.Scan(&k, &l, &r); err != nil {
				return err
			}
			p := Pair{Key: k}
			if err := json.Unmarshal([]byte(l), &p.Rows[0]); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(r), &p.Rows[1]); err != nil {
				return err
			}
			out[k] = p
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read record pairing of map %s: %w", name, err)
	}
	return out, nil
}

// PairsFind returns, for each value of a column set on one side, the key
// of the record that has it.
func (s *Store) PairsFind(ctx context.Context, name string, side int, cols string, vals []string) (map[string]string, error) {
	out := make(map[string]string, len(vals))
	err := inChunks(vals, func(part []string) error {
		args := append([]any{name, side, cols}, anys(part)...)
		rows, err := s.db.QueryContext(ctx, `SELECT val, key FROM pair_refs WHERE map=? AND side=? AND cols=? AND val IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v, k string
			if err := rows.Scan(&v, &k); err != nil {
				return err
			}
			out[v] = k
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find records of map %s: %w", name, err)
	}
	return out, nil
}

// PairsPut stores pairings with their index entries, and removes the
// pairings of deleted keys, in one transaction.
func (s *Store) PairsPut(ctx context.Context, name string, put []Pair, refs [][]PairRef, deleted []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save record pairing of map %s: %w", name, err)
	}
	defer tx.Rollback()
	if err := pairsPutTx(ctx, tx, name, put, refs, deleted); err != nil {
		return fmt.Errorf("save record pairing of map %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save record pairing of map %s: %w", name, err)
	}
	return nil
}

func pairsPutTx(ctx context.Context, tx *sql.Tx, name string, put []Pair, refs [][]PairRef, deleted []string) error {
	for _, part := range chunks(deleted, 400) {
		in := `(?` + strings.Repeat(",?", len(part)-1) + `)`
		args := append([]any{name}, anys(part)...)
		if _, err := tx.ExecContext(ctx, `DELETE FROM pairs WHERE map=? AND key IN `+in, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pair_refs WHERE map=? AND key IN `+in, args...); err != nil {
			return err
		}
	}
	// Many rows per statement: a chunk of an initial sync or a group pairs
	// up to a thousand records at once.
	const perStmt = 200
	args := make([]any, 0, 4*perStmt)
	n := 0
	flushPairs := func() error {
		if n == 0 {
			return nil
		}
		q := `INSERT INTO pairs(map, key, left_row, right_row) VALUES (?,?,?,?)` + strings.Repeat(",(?,?,?,?)", n-1) +
			` ON CONFLICT(map, key) DO UPDATE SET left_row=excluded.left_row, right_row=excluded.right_row`
		_, err := tx.ExecContext(ctx, q, args...)
		args, n = args[:0], 0
		return err
	}
	for _, p := range put {
		l, err := json.Marshal(p.Rows[0])
		if err != nil {
			return err
		}
		r, err := json.Marshal(p.Rows[1])
		if err != nil {
			return err
		}
		args = append(args, name, p.Key, string(l), string(r))
		if n++; n == perStmt {
			if err := flushPairs(); err != nil {
				return err
			}
		}
	}
	if err := flushPairs(); err != nil {
		return err
	}
	// An index entry a record no longer holds is left behind: readers
	// check the record itself (resolve.Identity.Find). A value another
	// record held is taken over: the later write of the unique columns
	// wins, as it did in the database.
	flushRefs := func() error {
		if n == 0 {
			return nil
		}
		q := `INSERT INTO pair_refs(map, side, cols, val, key) VALUES (?,?,?,?,?)` + strings.Repeat(",(?,?,?,?,?)", n-1) +
			` ON CONFLICT(map, side, cols, val) DO UPDATE SET key=excluded.key`
		_, err := tx.ExecContext(ctx, q, args...)
		args, n = args[:0], 0
		return err
	}
	for i, p := range put {
		for _, ref := range refs[i] {
			args = append(args, name, ref.Side, ref.Cols, ref.Val, p.Key)
			if n++; n == perStmt {
				if err := flushRefs(); err != nil {
					return err
				}
			}
		}
	}
	return flushRefs()
}

func chunks(items []string, size int) [][]string {
	var out [][]string
	for len(items) > 0 {
		part := items[:min(len(items), size)]
		items = items[len(part):]
		out = append(out, part)
	}
	return out
}

// PairsClear removes every pairing of a map (a resync rebuilds them).
func (s *Store) PairsClear(ctx context.Context, name string) error {
	for _, q := range []string{`DELETE FROM pairs WHERE map=?`, `DELETE FROM pair_refs WHERE map=?`} {
		if _, err := s.db.ExecContext(ctx, q, name); err != nil {
			return fmt.Errorf("clear record pairing of map %s: %w", name, err)
		}
	}
	return nil
}

// Wait is a parked key's missing reference: it is retried when the
// referenced record of RefMap gets a pairing with Val on Side.
type Wait struct {
	Map, Key string
	RefMap   string
	Ref      PairRef
}

// WaitAdd records that a parked key waits for a reference.
func (s *Store) WaitAdd(ctx context.Context, w Wait) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO catchup_waits(map, key, ref_map, side, cols, val) VALUES (?,?,?,?,?,?)`, w.Map, w.Key, w.RefMap, w.Ref.Side, w.Ref.Cols, w.Ref.Val)
	if err != nil {
		return fmt.Errorf("record the reference key %s of map %s waits for: %w", w.Key, w.Map, err)
	}
	return nil
}

// WaitsFor returns the parked keys waiting for any of refs of refMap.
func (s *Store) WaitsFor(ctx context.Context, refMap string, refs []PairRef) ([]Wait, error) {
	var out []Wait
	for _, r := range refs {
		rows, err := s.db.QueryContext(ctx, `SELECT map, key FROM catchup_waits WHERE ref_map=? AND side=? AND cols=? AND val=?`, refMap, r.Side, r.Cols, r.Val)
		if err != nil {
			return nil, fmt.Errorf("read keys waiting for map %s: %w", refMap, err)
		}
		for rows.Next() {
			w := Wait{RefMap: refMap, Ref: r}
			if err := rows.Scan(&w.Map, &w.Key); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read keys waiting for map %s: %w", refMap, err)
			}
			out = append(out, w)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read keys waiting for map %s: %w", refMap, err)
		}
	}
	return out, nil
}

// WaitsClear forgets what a key waits for (it was retried or discarded).
func (s *Store) WaitsClear(ctx context.Context, name, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM catchup_waits WHERE map=? AND key=?`, name, key); err != nil {
		return fmt.Errorf("clear the references key %s of map %s waits for: %w", key, name, err)
	}
	return nil
}

// HasWaits reports whether any parked key waits for a reference.
func (s *Store) HasWaits(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM catchup_waits LIMIT 1)`).Scan(&n); err != nil {
		return false, fmt.Errorf("read waiting keys: %w", err)
	}
	return n > 0, nil
}

func inChunks(items []string, f func([]string) error) error {
	for len(items) > 0 {
		part := items[:min(len(items), 500)]
		items = items[len(part):]
		if err := f(part); err != nil {
			return err
		}
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// WaitsReady returns the parked keys whose awaited reference now has a
// record in the pairing.
func (s *Store) WaitsReady(ctx context.Context) ([]Wait, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT w.map, w.key FROM catchup_waits w
		JOIN pair_refs r ON r.map = w.ref_map AND r.side = w.side AND r.cols = w.cols AND r.val = w.val`)
	if err != nil {
		return nil, fmt.Errorf("read keys whose references arrived: %w", err)
	}
	defer rows.Close()
	var out []Wait
	for rows.Next() {
		var w Wait
		if err := rows.Scan(&w.Map, &w.Key); err != nil {
			return nil, fmt.Errorf("read keys whose references arrived: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

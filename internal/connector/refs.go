package connector

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// ReadBack reads, inside the apply transaction, the columns cols of the
// rows of table whose key columns equal each of keys. Every key has the
// same columns and no NULL value. rows[i] belongs to keys[i] and is nil
// when no row has that key. Drivers implement it as one keyed query (a
// few for very many keys); its error ends the batch.
type ReadBack func(ctx context.Context, table string, cols []string, keys []change.Row) (rows []change.Row, err error)

// Resolver resolves the Ref values and reads back the Return columns of
// one batch, for the driver applying it. A driver builds it with
// NewResolver before its transaction and then, for each write or bulk
// run in batch order: Prepare, write, and Wrote, Unmatched or Failed;
// Finish gives Result.Returned.
//
// Read-backs are deferred and grouped: a written row with Return is read
// only when a later write needs its values, when a later write could
// change it (same table and key, or another key of the table), or at
// Finish, and all rows pending then are read with one ReadBack per table.
// A run of parents followed by their children costs one query.
type Resolver struct {
	ws     []Write
	state  []refState
	hasRef []bool
	rows   map[int]change.Row
	// pending lists written writes whose Return is not read yet, in
	// batch order; pendingKeys fingerprints their keys by table, and
	// pendingCols holds each table's key columns.
	pending     []int
	pendingKeys map[string]map[string]bool
	pendingCols map[string]string
}

type refState uint8

const (
	stateUnwritten refState = iota
	statePending            // wrote a row whose Return is not read yet
	stateRow                // rows holds the Return columns
	stateFailed             // the write failed
	stateUnmatched          // Expect did not match: nothing written
	stateNoRow              // a Delete, or no row has the key after the write
)

// NewResolver checks the batch's Ref values and Return lists. It returns
// nil, and allocates nothing, when no write has a Ref in its Values or a
// Return: the driver then takes its plain path. The error wraps ErrBadRef.
//
// Keys and Expect are checked for Ref values only in a batch that uses
// references: in a plain batch a Ref there reaches the driver's value
// encoder, which rejects it as a value of no column type (a row error).
// That keeps the plain path to one pass over each write's Values.
func NewResolver(ws []Write) (*Resolver, error) {
	var r *Resolver
	for i := range ws {
		w := &ws[i]
		refs := false
		for col, v := range w.Values {
			ref, ok := v.(Ref)
			if !ok {
				continue
			}
			if err := checkRef(ws, i, col, ref); err != nil {
				return nil, err
			}
			refs = true
		}
		for col, v := range w.Key {
			// A key may hold a reference too: an order line keyed by the
			// id its order gets in the same transaction.
			ref, ok := v.(Ref)
			if !ok {
				continue
			}
			if err := checkRef(ws, i, col, ref); err != nil {
				return nil, err
			}
			refs = true
		}
		if !refs && len(w.Return) == 0 {
			continue
		}
		if refs && w.Op == Delete && len(w.Values) > 0 {
			return nil, fmt.Errorf("%w: write %d (ref %d) deletes from %s with a Ref value; a Delete writes no values", ErrBadRef, i, w.Ref, w.Table)
		}
		if r == nil {
			r = &Resolver{ws: ws, state: make([]refState, len(ws)), hasRef: make([]bool, len(ws))}
		}
		r.hasRef[i] = refs
	}
	if r == nil {
		return nil, nil
	}
	for i := range ws {
		w := &ws[i]
		for col, v := range w.Expect {
			if _, ok := v.(Ref); ok {
				return nil, fmt.Errorf("%w: write %d (ref %d) to %s has a Ref in its expected column %s; expected values must be values", ErrBadRef, i, w.Ref, w.Table, col)
			}
		}
	}
	return r, nil
}

func checkRef(ws []Write, i int, col string, ref Ref) error {
	w := &ws[i]
	if ref.Write < 0 || ref.Write >= i {
		return fmt.Errorf("%w: write %d (ref %d) to %s column %s refers to write %d, which is not an earlier write of the batch", ErrBadRef, i, w.Ref, w.Table, col, ref.Write)
	}
	if !slices.Contains(ws[ref.Write].Return, ref.Column) {
		return fmt.Errorf("%w: write %d (ref %d) to %s column %s refers to column %s of write %d, which does not list it in Return", ErrBadRef, i, w.Ref, w.Table, col, ref.Column, ref.Write)
	}
	return nil
}

// RunEnd shortens the bulk run [i, j) so that no write in it refers to a
// write of the run, or writes the key of an earlier write of the run
// that has Return: both need the earlier row first. It returns j when r
// is nil, and at least i+1.
func (r *Resolver) RunEnd(i, j int) int {
	if r == nil {
		return j
	}
	var keys map[string]bool
	for k := i; k < j; k++ {
		w := &r.ws[k]
		if r.hasRef[k] {
			for _, v := range w.Values {
				if ref, ok := v.(Ref); ok && ref.Write >= i && k > i {
					return k
				}
			}
			for _, v := range w.Key {
				if _, ok := v.(Ref); ok && k > i {
					return k // its key is known once the run before it is written
				}
			}
		}
		if keys == nil && len(w.Return) == 0 {
			continue
		}
		fp := keyPrint(w.Key)
		if keys[fp] && k > i {
			return k
		}
		if len(w.Return) > 0 {
			if keys == nil {
				keys = map[string]bool{}
			}
			keys[fp] = true
		}
	}
	return j
}

// Prepare readies writes [lo, hi) for writing: it reads back the pending
// rows they need or could change, then returns the writes with their Ref
// values replaced by the values read. Without Ref values in the range the
// batch's own writes are returned, not a copy. An error wrapping
// ErrRefUnresolved (DW3002) belongs to the first write whose reference
// did not resolve; any other error ends the batch. r must not be nil.
func (r *Resolver) Prepare(ctx context.Context, lo, hi int, read ReadBack) ([]Write, error) {
	if r.needsFlush(lo, hi) {
		if err := r.flush(ctx, read); err != nil {
			return nil, err
		}
	}
	refs := false
	for k := lo; k < hi && !refs; k++ {
		refs = r.hasRef[k]
	}
	if !refs {
		return r.ws[lo:hi], nil
	}
	out := make([]Write, hi-lo)
	copy(out, r.ws[lo:hi])
	for k := lo; k < hi; k++ {
		if !r.hasRef[k] {
			continue
		}
		w := &out[k-lo]
		vals, _, err := r.resolveRow(k, w.Values)
		if err != nil {
			return nil, err
		}
		w.Values = vals
		key, changed, err := r.resolveRow(k, w.Key)
		if err != nil {
			return nil, err
		}
		if changed {
			w.Key = key
			// Later read-backs of this row use the key it was written
			// under.
			r.ws[k].Key = key
		}
	}
	return out, nil
}

// resolveRow returns row with the Ref values of write k replaced, and
// whether it held any (else row itself).
func (r *Resolver) resolveRow(k int, row change.Row) (change.Row, bool, error) {
	var out change.Row
	for col, v := range row {
		ref, ok := v.(Ref)
		if !ok {
			continue
		}
		x, err := r.resolve(k, col, ref)
		if err != nil {
			return nil, false, err
		}
		if out == nil {
			out = row.Clone()
		}
		out[col] = x
	}
	if out == nil {
		return row, false, nil
	}
	return out, true, nil
}

func (r *Resolver) resolve(k int, col string, ref Ref) (any, error) {
	w, from := &r.ws[k], &r.ws[ref.Write]
	why := ""
	switch r.state[ref.Write] {
	case stateRow:
		return r.rows[ref.Write][ref.Column], nil
	case stateFailed:
		why = "failed"
	case stateUnmatched:
		why = "was not applied: the row did not match the expected values"
	case stateNoRow:
		why = "left no row"
	default:
		why = "was not written"
	}
	return nil, problem.Wrap(problem.LookupUnresolved, ErrRefUnresolved,
		"write ref %d to %s: column %s refers to %s of write %d (ref %d) to %s key %v, which %s; fix that row and retry both",
		w.Ref, w.Table, col, ref.Column, ref.Write, from.Ref, from.Table, from.Key, why)
}

// needsFlush reports whether a write of [lo, hi) needs a pending row's
// values or could change a pending row: it writes a table with pending
// rows under other key columns, or under the key of a pending row.
func (r *Resolver) needsFlush(lo, hi int) bool {
	if len(r.pending) == 0 {
		return false
	}
	for k := lo; k < hi; k++ {
		w := &r.ws[k]
		if r.hasRef[k] {
			for _, v := range w.Values {
				if ref, ok := v.(Ref); ok && r.state[ref.Write] == statePending {
					return true
				}
			}
			for _, v := range w.Key {
				if ref, ok := v.(Ref); ok && r.state[ref.Write] == statePending {
					return true
				}
			}
		}
		keys, ok := r.pendingKeys[w.Table]
		if !ok {
			continue
		}
		if r.pendingCols[w.Table] != keyColumns(w.Key) || keys[keyPrint(w.Key)] {
			return true
		}
	}
	return false
}

// Wrote records that writes [lo, hi) were written.
func (r *Resolver) Wrote(lo, hi int) {
	if r == nil {
		return
	}
	for k := lo; k < hi; k++ {
		w := &r.ws[k]
		switch {
		case w.Op == Delete:
			r.state[k] = stateNoRow
		case len(w.Return) > 0:
			r.addPending(k)
		}
	}
}

// Unmatched records that write i was left unapplied because the row did
// not match. An InsertOnly whose key exists still has a row to read.
func (r *Resolver) Unmatched(i int) {
	if r == nil {
		return
	}
	if r.ws[i].Op == InsertOnly && len(r.ws[i].Return) > 0 {
		r.addPending(i)
		return
	}
	r.state[i] = stateUnmatched
}

// Failed records that write i failed and was rolled back.
func (r *Resolver) Failed(i int) {
	if r != nil {
		r.state[i] = stateFailed
	}
}

func (r *Resolver) addPending(i int) {
	w := &r.ws[i]
	if r.pendingKeys == nil {
		r.pendingKeys = map[string]map[string]bool{}
		r.pendingCols = map[string]string{}
	}
	cols := keyColumns(w.Key)
	keys := r.pendingKeys[w.Table]
	switch {
	case keys == nil:
		keys = map[string]bool{}
		r.pendingKeys[w.Table] = keys
		r.pendingCols[w.Table] = cols
	case r.pendingCols[w.Table] != cols:
		// Rows pending under two keys of one table (Prepare was not
		// asked first): any later write to the table reads them first.
		r.pendingCols[w.Table] = "\x01"
	}
	keys[keyPrint(w.Key)] = true
	r.state[i] = statePending
	r.pending = append(r.pending, i)
}

// Finish reads back the rows still pending and returns the Return columns
// of every write that left a row, by write index.
func (r *Resolver) Finish(ctx context.Context, read ReadBack) (map[int]change.Row, error) {
	if r == nil {
		return nil, nil
	}
	if err := r.flush(ctx, read); err != nil {
		return nil, err
	}
	return r.rows, nil
}

// flush reads every pending row: one ReadBack per table and key columns.
func (r *Resolver) flush(ctx context.Context, read ReadBack) error {
	if len(r.pending) == 0 {
		return nil
	}
	var groups []string
	group := map[string][]int{}
	for _, i := range r.pending {
		g := r.ws[i].Table + "\x00\x00" + keyColumns(r.ws[i].Key)
		if group[g] == nil {
			groups = append(groups, g)
		}
		group[g] = append(group[g], i)
	}
	for _, g := range groups {
		idx := group[g]
		t := r.ws[idx[0]].Table
		var cols []string
		keys := make([]change.Row, len(idx))
		for n, i := range idx {
			keys[n] = r.ws[i].Key
			for _, c := range r.ws[i].Return {
				if !slices.Contains(cols, c) {
					cols = append(cols, c)
				}
			}
		}
		sort.Strings(cols)
		got, err := read(ctx, t, cols, keys)
		if err != nil {
			return fmt.Errorf("read back %s: %w", t, err)
		}
		if len(got) != len(keys) {
			return fmt.Errorf("read back %s: %d rows for %d keys", t, len(got), len(keys))
		}
		if r.rows == nil {
			r.rows = map[int]change.Row{}
		}
		for n, i := range idx {
			if got[n] == nil {
				r.state[i] = stateNoRow
				continue
			}
			row := make(change.Row, len(r.ws[i].Return))
			for _, c := range r.ws[i].Return {
				row[c] = got[n][c]
			}
			r.rows[i] = row
			r.state[i] = stateRow
		}
	}
	r.pending = r.pending[:0]
	clear(r.pendingKeys)
	clear(r.pendingCols)
	return nil
}

// keyColumns is the sorted, joined column names of a key.
func keyColumns(key change.Row) string {
	names := make([]string, 0, len(key))
	for k := range key {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, "\x00")
}

// keyPrint identifies a key's columns and values, for finding two writes
// of one row.
func keyPrint(key change.Row) string {
	names := make([]string, 0, len(key))
	for k := range key {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s\x00%T\x00%v\x00", n, key[n], key[n])
	}
	return b.String()
}

// ReadBackRows runs a read-back statement on a database/sql transaction
// whose rows are the key's index in the batch's keys, then the read
// columns, and stores each row at that index in out. decode turns the
// i-th column's database value into the column's name and its value as
// the driver's Scan gives it.
func ReadBackRows(ctx context.Context, tx *sql.Tx, q string, args []any, ncols int, decode func(i int, v any) (string, any, error), out []change.Row) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]any, ncols)
	ptrs := make([]any, ncols+1)
	var idx int64
	ptrs[0] = &idx
	for i := range vals {
		ptrs[i+1] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if idx < 0 || int(idx) >= len(out) {
			return fmt.Errorf("unexpected key index %d", idx)
		}
		r := make(change.Row, ncols)
		for i := range vals {
			name, v, err := decode(i, vals[i])
			if err != nil {
				return err
			}
			r[name] = v
		}
		out[idx] = r
	}
	return rows.Err()
}

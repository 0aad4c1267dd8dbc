// Package resolve keeps the record identity of every map (which row on one
// side is which row on the other) and resolves lookups through it, many
// at a time, never by translating the referenced row and never with a
// query per row.
//
// A record is known by its canonical key (its left-side integration key
// values as JSON) and holds, per side, its identity columns: the key
// columns and every column another map's lookup matches on or writes from
// (a CRM surrogate uuid, an ERP account number). Each record is indexed by
// every column set lookups match on, so a reference's values find the
// record in one indexed read. The pairing lives in the control store;
// a bounded cache in front of it keeps the hot records, so memory does not
// grow with the number of records (docs/adr/20261204-record-identity.md).
package resolve

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/store"
)

// Store is the durable part of the pairing (internal/store implements it).
type Store interface {
	PairsGet(ctx context.Context, name string, keys []string) (map[string]store.Pair, error)
	PairsFind(ctx context.Context, name string, side int, cols string, vals []string) (map[string]string, error)
	PairsPut(ctx context.Context, name string, put []store.Pair, refs [][]store.PairRef, deleted []string) error
}

// Identity is the record pairing of every map of a link. It is safe for
// concurrent use.
type Identity struct {
	st Store
	// cols[map][side] are the identity columns kept for the map's records.
	cols map[string][2][]string
	// sets[map][side] are the column sets records are indexed by.
	sets map[string][2][][]string
	// keys[map][side] are the integration key columns.
	keys map[string][2][]string
	// needed holds the maps some lookup references: only their records
	// are paired.
	needed map[string]bool

	mu   sync.Mutex
	recs bounded[store.Pair] // map \x00 key → record
	refs bounded[string]     // map \x00 side \x00 cols \x00 val → key
}

// DefaultCapacity is how many records and index entries the cache keeps.
const DefaultCapacity = 200_000

// New builds the pairing of the compiled maps over st, caching at most
// capacity records.
func New(st Store, maps map[string]*mapping.Map, capacity int) *Identity {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	id := &Identity{st: st, cols: map[string][2][]string{}, sets: map[string][2][][]string{}, keys: map[string][2][]string{}, needed: map[string]bool{},
		recs: newBounded[store.Pair](capacity), refs: newBounded[string](capacity)}
	names := make([]string, 0, len(maps))
	for n := range maps {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m := maps[n]
		var cols [2][]string
		var sets [2][][]string
		var keys [2][]string
		for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
			keys[s] = m.KeyColumns(s)
			cols[s] = append(cols[s], keys[s]...)
			sets[s] = append(sets[s], keys[s])
		}
		id.cols[n], id.sets[n], id.keys[n] = cols, sets, keys
	}
	// Every lookup into a map adds the columns it matches on (its set)
	// and the columns it writes from.
	for _, n := range names {
		m := maps[n]
		for j := range m.Lookups() {
			for _, from := range []mapping.Side{mapping.Left, mapping.Right} {
				spec := m.Lookup(from, j)
				if _, ok := maps[spec.Map]; !ok || len(spec.SourceRefs) == 0 {
					continue
				}
				id.needed[spec.Map] = true
				cols, sets := id.cols[spec.Map], id.sets[spec.Map]
				cols[from] = union(cols[from], spec.SourceRefs)
				cols[from.Other()] = union(cols[from.Other()], spec.TargetRefs)
				if !slices.ContainsFunc(sets[from], func(x []string) bool { return slices.Equal(x, spec.SourceRefs) }) {
					sets[from] = append(sets[from], spec.SourceRefs)
				}
				id.cols[spec.Map], id.sets[spec.Map] = cols, sets
			}
		}
	}
	return id
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, c := range b {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Sets returns the column sets side s of map name's records are indexed
// by: the key first, then each set a lookup matches on.
func (id *Identity) Sets(name string, s mapping.Side) [][]string { return id.sets[name][s] }

// Needed reports whether some lookup references map name, so that its
// records must be paired.
func (id *Identity) Needed(name string) bool { return id.needed[name] }

// Columns returns the identity columns of map name on side s.
func (id *Identity) Columns(name string, s mapping.Side) []string { return id.cols[name][s] }

// Referenced reports whether side s of map name has identity columns
// beyond its key (a surrogate some lookup writes from or matches on).
func (id *Identity) Referenced(name string, s mapping.Side) bool {
	return id.needed[name] && len(id.cols[name][s]) > len(id.keys[name][s])
}

// Project keeps the identity columns of side s of a row.
func (id *Identity) Project(name string, s mapping.Side, row change.Row) change.Row {
	out := change.Row{}
	for _, c := range id.cols[name][s] {
		if v, ok := row[c]; ok {
			out[c] = v
		}
	}
	return out
}

// Tuple renders values as the index's text: equal values (as mapping.Equal
// sees them) give equal text. ok is false when a value is NULL, which
// references nothing.
func Tuple(vals []any) (string, bool) {
	parts := make([]string, len(vals))
	for i, v := range vals {
		if v == nil {
			return "", false
		}
		fp, ok := mapping.Fingerprint(v)
		if !ok {
			b, err := json.Marshal(v)
			if err != nil {
				fp = fmt.Sprint(v)
			} else {
				fp = "j:" + string(b)
			}
		}
		parts[i] = fp
	}
	return strings.Join(parts, "\x1f"), true
}

// RefsOf returns the index entries of a record.
func (id *Identity) RefsOf(name string, p store.Pair) []store.PairRef {
	var out []store.PairRef
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		for _, set := range id.sets[name][s] {
			vals := make([]any, len(set))
			for i, c := range set {
				vals[i] = p.Rows[s][c]
			}
			if t, ok := Tuple(vals); ok {
				out = append(out, store.PairRef{Side: int(s), Cols: strings.Join(set, ","), Val: t})
			}
		}
	}
	return out
}

// Get returns the records of map name with the given keys; a key with no
// record is absent.
func (id *Identity) Get(ctx context.Context, name string, keys []string) (map[string]store.Pair, error) {
	out := make(map[string]store.Pair, len(keys))
	var missing []string
	id.mu.Lock()
	for _, k := range keys {
		if p, ok := id.recs.get(name + "\x00" + k); ok {
			out[k] = p
		} else if !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
	}
	id.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	got, err := id.st.PairsGet(ctx, name, missing)
	if err != nil {
		return nil, err
	}
	id.mu.Lock()
	for k, p := range got {
		out[k] = p
		id.recs.put(name+"\x00"+k, p)
	}
	id.mu.Unlock()
	return out, nil
}

// Find returns the records of map name whose columns cols on side s hold
// each tuple of values, by the tuple's index in tuples; a tuple that
// matches no record (or holds a NULL) is absent.
func (id *Identity) Find(ctx context.Context, name string, s mapping.Side, cols []string, tuples [][]any) (map[int]store.Pair, error) {
	out := map[int]store.Pair{}
	colsText := strings.Join(cols, ",")
	keyOf := map[int]string{}
	var ask []string
	askIdx := map[string][]int{}
	isKey := slices.Equal(cols, id.keys[name][s]) && s == mapping.Left
	id.mu.Lock()
	for i, vals := range tuples {
		t, ok := Tuple(vals)
		if !ok {
			continue
		}
		if isKey {
			// The canonical key is the left key: no index read.
			k, err := KeyOf(vals)
			if err == nil {
				keyOf[i] = k
				continue
			}
		}
		if k, ok := id.refs.get(name + "\x00" + sideText(s) + "\x00" + colsText + "\x00" + t); ok {
			keyOf[i] = k
			continue
		}
		if _, seen := askIdx[t]; !seen {
			ask = append(ask, t)
		}
		askIdx[t] = append(askIdx[t], i)
	}
	id.mu.Unlock()
	if len(ask) > 0 {
		found, err := id.st.PairsFind(ctx, name, int(s), colsText, ask)
		if err != nil {
			return nil, err
		}
		id.mu.Lock()
		for t, k := range found {
			id.refs.put(name+"\x00"+sideText(s)+"\x00"+colsText+"\x00"+t, k)
			for _, i := range askIdx[t] {
				keyOf[i] = k
			}
		}
		id.mu.Unlock()
	}
	if len(keyOf) == 0 {
		return out, nil
	}
	keys := make([]string, 0, len(keyOf))
	for _, k := range keyOf {
		keys = append(keys, k)
	}
	recs, err := id.Get(ctx, name, keys)
	if err != nil {
		return nil, err
	}
	for i, k := range keyOf {
		p, ok := recs[k]
		if !ok {
			continue
		}
		// A cached index entry may be stale (the record changed since):
		// the record itself must still hold the values.
		have := make([]any, len(cols))
		for j, c := range cols {
			have[j] = p.Rows[s][c]
		}
		if a, _ := Tuple(have); a != mustTuple(tuples[i]) {
			continue
		}
		out[i] = p
	}
	return out, nil
}

func mustTuple(vals []any) string {
	t, _ := Tuple(vals)
	return t
}

// Put stores records and removes deleted keys of map name, durably, then
// caches them.
func (id *Identity) Put(ctx context.Context, name string, put []store.Pair, deleted []string) error {
	if (len(put) == 0 && len(deleted) == 0) || !id.needed[name] {
		return nil
	}
	refs := make([][]store.PairRef, len(put))
	for i, p := range put {
		refs[i] = id.RefsOf(name, p)
	}
	// Invariant: the cache is written after the store, so it never holds
	// a pairing the store does not.
	if err := id.st.PairsPut(ctx, name, put, refs, deleted); err != nil {
		return err
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	for _, k := range deleted {
		id.recs.del(name + "\x00" + k)
	}
	for i, p := range put {
		id.recs.put(name+"\x00"+p.Key, p)
		for _, r := range refs[i] {
			id.refs.put(name+"\x00"+sideText(mapping.Side(r.Side))+"\x00"+r.Cols+"\x00"+r.Val, p.Key)
		}
	}
	return nil
}

// Forget drops the cached records of map name (after a resync).
func (id *Identity) Forget(name string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	id.recs.dropPrefix(name + "\x00")
	id.refs.dropPrefix(name + "\x00")
}

func sideText(s mapping.Side) string {
	if s == mapping.Left {
		return "0"
	}
	return "1"
}

// KeyOf renders integration key values as a canonical key.
func KeyOf(vals []any) (string, error) {
	parts := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		enc, err := change.EncodeValue(v)
		if err != nil {
			return "", err
		}
		parts[i] = enc
	}
	b, err := json.Marshal(parts)
	return string(b), err
}

// bounded is a map that keeps at most max entries: when full, an
// arbitrary half is dropped (Go's map order), which keeps the cost of a
// put constant on average and memory bounded whatever the data size.
type bounded[V any] struct {
	max int
	m   map[string]V
}

func newBounded[V any](max int) bounded[V] { return bounded[V]{max: max, m: map[string]V{}} }

func (b *bounded[V]) get(k string) (V, bool) {
	v, ok := b.m[k]
	return v, ok
}

func (b *bounded[V]) put(k string, v V) {
	if _, ok := b.m[k]; !ok && len(b.m) >= b.max {
		n := 0
		for x := range b.m {
			delete(b.m, x)
			n++
			if n >= b.max/2 {
				break
			}
		}
	}
	b.m[k] = v
}

func (b *bounded[V]) del(k string) { delete(b.m, k) }

func (b *bounded[V]) dropPrefix(p string) {
	for k := range b.m {
		if strings.HasPrefix(k, p) {
			delete(b.m, k)
		}
	}
}

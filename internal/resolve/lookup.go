package resolve

import (
	"context"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/store"
)

// Batch resolves the lookups of many rows flowing from one side at once:
// Add every pending lookup first, Fetch once (one indexed read per related
// map and column set), then Resolve each.
type Batch struct {
	id    *Identity
	from  mapping.Side
	asks  map[string]*ask // by map \x00 cols
	order []string
}

type ask struct {
	name   string
	cols   []string
	tuples [][]any
	seen   map[string]int // tuple text → index in tuples
	found  map[int]store.Pair
}

// NewBatch starts a batch of lookups for rows flowing from side from.
func (id *Identity) NewBatch(from mapping.Side) *Batch {
	return &Batch{id: id, from: from, asks: map[string]*ask{}}
}

// Add registers a lookup's values.
func (b *Batch) Add(spec mapping.LookupSpec, pl mapping.PendingLookup) {
	if pl.Null(spec) {
		return
	}
	t, ok := Tuple(pl.Values)
	if !ok {
		return
	}
	k := spec.Map + "\x00" + strings.Join(spec.SourceRefs, ",")
	a := b.asks[k]
	if a == nil {
		a = &ask{name: spec.Map, cols: spec.SourceRefs, seen: map[string]int{}}
		b.asks[k] = a
		b.order = append(b.order, k)
	}
	if _, dup := a.seen[t]; dup {
		return
	}
	a.seen[t] = len(a.tuples)
	a.tuples = append(a.tuples, pl.Values)
}

// Fetch reads every registered reference's record.
func (b *Batch) Fetch(ctx context.Context) error {
	for _, k := range b.order {
		a := b.asks[k]
		if a.found != nil || len(a.tuples) == 0 {
			continue
		}
		found, err := b.id.Find(ctx, a.name, b.from, a.cols, a.tuples)
		if err != nil {
			return err
		}
		a.found = found
	}
	return nil
}

// Record returns the record a lookup's values reference as fetched, and
// whether there is one.
func (b *Batch) Record(spec mapping.LookupSpec, pl mapping.PendingLookup) (store.Pair, bool) {
	a := b.asks[spec.Map+"\x00"+strings.Join(spec.SourceRefs, ",")]
	if a == nil {
		return store.Pair{}, false
	}
	t, ok := Tuple(pl.Values)
	if !ok {
		return store.Pair{}, false
	}
	i, ok := a.seen[t]
	if !ok {
		return store.Pair{}, false
	}
	p, ok := a.found[i]
	return p, ok
}

// Targets returns the values a lookup writes on the target side, read
// from the referenced record's target-side identity columns; ok is false
// when the record does not hold them all.
func Targets(spec mapping.LookupSpec, to mapping.Side, p store.Pair) (change.Row, bool) {
	out := make(change.Row, len(spec.TargetColumns))
	for i, col := range spec.TargetColumns {
		v, ok := p.Rows[to][spec.TargetRefs[i]]
		if !ok || v == nil {
			return nil, false
		}
		out[col] = v
	}
	return out, true
}

// Overlay holds the records a group of changes creates, changes or
// deletes before they are stored, so that a later change in the same group
// resolves its references against them, in the order the source wrote
// them.
type Overlay struct {
	id    *Identity
	recs  map[string]*store.Pair // map \x00 key
	gone  map[string]bool        // map \x00 key deleted in the group
	index map[string]string      // map \x00 side \x00 cols \x00 tuple → key
}

// NewOverlay starts an empty overlay.
func (id *Identity) NewOverlay() *Overlay {
	return &Overlay{id: id, recs: map[string]*store.Pair{}, gone: map[string]bool{}, index: map[string]string{}}
}

// Set records a record as the group leaves it.
func (o *Overlay) Set(name string, p store.Pair) {
	k := name + "\x00" + p.Key
	cp := p
	o.recs[k] = &cp
	delete(o.gone, k)
	for _, r := range o.id.RefsOf(name, p) {
		o.index[name+"\x00"+sideText(mapping.Side(r.Side))+"\x00"+r.Cols+"\x00"+r.Val] = p.Key
	}
}

// Delete records that the group deleted a record.
func (o *Overlay) Delete(name, key string) {
	k := name + "\x00" + key
	delete(o.recs, k)
	o.gone[k] = true
}

// Get returns the group's version of a record: the record, and whether
// the group touched it at all (a deleted record is touched and absent).
func (o *Overlay) Get(name, key string) (p store.Pair, present, touched bool) {
	k := name + "\x00" + key
	if r, ok := o.recs[k]; ok {
		return *r, true, true
	}
	return store.Pair{}, false, o.gone[k]
}

// Find returns the group's record whose columns on side s hold vals.
// touched is true when the answer comes from the group (found or deleted):
// the stored pairing must then not be used.
func (o *Overlay) Find(name string, s mapping.Side, cols []string, vals []any) (p store.Pair, found, touched bool) {
	t, ok := Tuple(vals)
	if !ok {
		return store.Pair{}, false, false
	}
	key, ok := o.index[name+"\x00"+sideText(s)+"\x00"+strings.Join(cols, ",")+"\x00"+t]
	if !ok {
		return store.Pair{}, false, false
	}
	p, present, touched := o.Get(name, key)
	if !present {
		return store.Pair{}, false, touched
	}
	have := make([]any, len(cols))
	for i, c := range cols {
		have[i] = p.Rows[s][c]
	}
	if h, _ := Tuple(have); h != t {
		return store.Pair{}, false, false // the record moved on within the group
	}
	return p, true, true
}

// Records returns the records the group left, by map, and the keys it
// deleted, by map.
func (o *Overlay) Records() (put map[string][]store.Pair, deleted map[string][]string) {
	put, deleted = map[string][]store.Pair{}, map[string][]string{}
	for k, p := range o.recs {
		name := k[:strings.IndexByte(k, 0)]
		put[name] = append(put[name], *p)
	}
	for k := range o.gone {
		name := k[:strings.IndexByte(k, 0)]
		deleted[name] = append(deleted[name], k[len(name)+1:])
	}
	return put, deleted
}

// Missing is a reference a fetched batch found no record for.
type Missing struct {
	Map  string
	Cols []string
	Vals []any
}

// Missing lists the registered references that have no record.
func (b *Batch) Missing() []Missing {
	var out []Missing
	for _, k := range b.order {
		a := b.asks[k]
		for i, vals := range a.tuples {
			if _, ok := a.found[i]; !ok {
				out = append(out, Missing{Map: a.name, Cols: a.cols, Vals: vals})
			}
		}
	}
	return out
}

// Refetch reads the references that had no record again (after they were
// paired by other means).
func (b *Batch) Refetch(ctx context.Context) error {
	for _, k := range b.order {
		a := b.asks[k]
		if len(a.found) == len(a.tuples) {
			continue
		}
		var idx []int
		var tuples [][]any
		for i, vals := range a.tuples {
			if _, ok := a.found[i]; !ok {
				idx = append(idx, i)
				tuples = append(tuples, vals)
			}
		}
		found, err := b.id.Find(ctx, a.name, b.from, a.cols, tuples)
		if err != nil {
			return err
		}
		for j, p := range found {
			a.found[idx[j]] = p
		}
	}
	return nil
}

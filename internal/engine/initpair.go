package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/resolve"
	"github.com/dualwrite/dualwrite/internal/store"
)

// pairChunk records the pairing of a written chunk's records: the source
// row's identity columns and the target row's as the writes left it, with
// the surrogates the target returned.
//
// Invariant: a chunk's pairing is saved before its progress, so a
// resumed initial sync never leaves a written record unpaired.
func (e *Engine) pairChunk(ctx context.Context, ms *mapState, from mapping.Side, p chunkPlan, failed map[int]bool, returned map[int]change.Row) error {
	to := from.Other()
	post := make([]change.Row, len(p.refs))
	for i, r := range p.refs {
		post[i] = r.have.Clone()
		if post[i] == nil {
			post[i] = change.Row{}
		}
	}
	for i, w := range p.toTarget {
		for k, v := range w.Values {
			if _, ok := v.(connector.Ref); ok {
				continue // resolved by the connector; not an identity column's value
			}
			post[w.Ref][k] = v
		}
		for k, v := range w.Key {
			post[w.Ref][k] = v
		}
		for k, v := range returned[i] {
			post[w.Ref][k] = v
		}
	}
	put := make([]store.Pair, 0, len(p.refs))
	var unknown []change.Row
	var unknownAt []int
	idCols := e.identity.Columns(ms.name, to)
	for i, r := range p.refs {
		if failed[i] || r.key == "" {
			continue
		}
		rec := store.Pair{Key: r.key}
		rec.Rows[from] = e.identity.Project(ms.name, from, r.src)
		rec.Rows[to] = e.identity.Project(ms.name, to, post[i])
		if missingColumns(rec.Rows[to], idCols) && r.tkey != nil {
			unknown = append(unknown, r.tkey)
			unknownAt = append(unknownAt, len(put))
		}
		put = append(put, rec)
	}
	if len(unknown) > 0 {
		// Identity columns the target generated and did not return (a
		// connector without Return): read back, one read for the chunk.
		rows, err := e.readRows(ctx, to, ms.m.Table(to), unknown)
		if err != nil {
			return err
		}
		for i, row := range rows {
			for c, v := range e.identity.Project(ms.name, to, row) {
				put[unknownAt[i]].Rows[to][c] = v
			}
		}
	}
	if err := e.identity.Put(ctx, ms.name, put, nil); err != nil {
		return transient(err)
	}
	if len(put) > 0 {
		e.nudgeWaiters()
	}
	return nil
}

// planChunk decides what one chunk of source rows needs: it translates
// them, reads their target rows in one round trip where the connector
// can, and builds the writes. Rows that fail are recorded as errors.
func (e *Engine) planChunk(ctx context.Context, ms *mapState, from mapping.Side, rows []change.Row, onlyMissing, targetEmpty bool, conflicts *int) (chunkPlan, error) {
	m := ms.m
	to := from.Other()
	preps := make([]initPrep, 0, len(rows))
	batch := e.identity.NewBatch(from)
	var trs []mapping.Translated
	for _, row := range rows {
		kv, err := m.KeyOf(from, row)
		if err != nil {
			e.initError(ctx, ms, from, "?", err)
			continue
		}
		ok, err := m.Match(from, row)
		if err != nil {
			e.initError(ctx, ms, from, keyJSON(kv), problem.Wrap(problem.TransformFailed, err, "filter failed"))
			continue
		}
		if !ok {
			continue
		}
		tr, err := m.Translate(from, row)
		if err != nil {
			e.initError(ctx, ms, from, keyJSON(kv), withCode(problem.TransformFailed, err))
			continue
		}
		for _, pl := range tr.Lookups {
			batch.Add(m.Lookup(from, pl.Lookup), pl)
		}
		preps = append(preps, initPrep{kv: kv, row: row})
		trs = append(trs, tr)
	}
	// Every lookup of the chunk is resolved in one read per related map.
	if err := e.fetchBatch(ctx, batch, from, 0, nil); err != nil {
		return chunkPlan{}, err
	}
	kept := preps[:0]
	keptTrs := trs[:0]
	for i, p := range preps {
		vals, deferred, err := e.resolveBatch(batch, m, from, trs[i], true)
		if err == nil {
			p.vals, p.deferred = vals, deferred
			p.tkey, err = keyRow(m, to, vals)
		}
		if err == nil {
			p.skey, err = keyRow(m, from, p.row)
		}
		if err == nil {
			p.key, err = e.canonicalKey(m, from, p.row, vals)
		}
		if err != nil {
			e.initError(ctx, ms, from, keyJSON(p.kv), err)
			continue
		}
		kept = append(kept, p)
		keptTrs = append(keptTrs, trs[i])
	}
	preps, trs = kept, keptTrs
	// Into an empty target, a self-reference to a record of this chunk is
	// written in the chunk's own transaction rather than deferred.
	order := make([]int, len(preps))
	for i := range order {
		order[i] = i
	}
	var inChunk map[int][]chunkRef
	if targetEmpty && len(preps) <= connector.MaxBatchRows {
		inChunk, order = chunkSelfRefs(m, from, batch, preps, trs)
	}
	tkeys := make([]change.Row, len(preps))
	for i, p := range preps {
		tkeys[i] = p.tkey
	}
	haves := make([]change.Row, len(tkeys))
	if !targetEmpty {
		var err error
		if haves, err = e.readRows(ctx, to, m.Table(to), tkeys); err != nil {
			return chunkPlan{}, err
		}
	}
	var toTarget, toSource []connector.Write
	var refs []initRow
	var srcRefs []initRow
	writeOf := map[int]int{} // prep → index in toTarget of its write with Return
	for _, i := range order {
		p := preps[i]
		ws, back, isConflict, err := e.reconcileInit(ctx, ms, from, p, haves[i], onlyMissing, targetEmpty)
		if err != nil {
			if isTransient(err) {
				return chunkPlan{}, err
			}
			e.initError(ctx, ms, from, keyJSON(p.kv), err)
			continue
		}
		if crs, ok := inChunk[i]; ok {
			if !linkChunkRefs(ws, crs, toTarget, writeOf, len(toTarget)) {
				p.deferred = true // its referenced row has no write to refer to
			}
		}
		if p.deferred {
			if err := e.store.AddDeferred(ctx, ms.name, passName(from), keyJSON(p.kv)); err != nil {
				return chunkPlan{}, err
			}
		}
		if isConflict {
			e.conflictResolved(ms, from, ms.master)
			*conflicts++
			if *conflicts <= maxLoggedConflicts {
				e.activity(ctx, ms.name, "engine", "conflict", fmt.Sprintf("key %s differs on both sides; master %s wins", keyText(keyJSON(p.kv)), e.sideName(ms.master)))
			}
		}
		referenced := e.identity.Referenced(ms.name, to)
		for _, w := range ws {
			w.Ref = len(refs)
			if referenced && w.Op != connector.Delete {
				w.Return = e.identity.Columns(ms.name, to)
				writeOf[i] = len(toTarget)
			}
			toTarget = append(toTarget, w)
		}
		refs = append(refs, initRow{kv: p.kv, src: p.row, key: p.key, vals: p.vals, tkey: p.tkey, have: haves[i]})
		for _, w := range back {
			w.Ref = len(srcRefs)
			toSource = append(toSource, w)
		}
		srcRefs = append(srcRefs, initRow{kv: p.kv, src: p.row})
	}
	return chunkPlan{rows: len(rows), toTarget: toTarget, toSource: toSource, refs: refs, srcRefs: srcRefs}, nil
}

// chunkRef is a self-reference of a chunk's row to another row of the
// same chunk: the columns it writes and the referenced row's target
// columns they take.
type chunkRef struct {
	prep       int // the referenced row, by index in the chunk
	cols, refs []string
}

// chunkSelfRefs finds, among a chunk's rows whose self-references the
// pairing could not resolve (deferred), those whose every such reference
// names another row of the same chunk. Those are written with a
// connector.Ref to the referenced row's write, resolved by the connector
// inside the chunk's transaction, instead of being deferred to the last
// pass (an update per row). It returns them, marked not deferred, and the
// order to write the chunk in: referenced rows before the rows that
// refer to them, by depth of reference, so each depth is one bulk run. A
// row that refers to itself or sits on a reference cycle within the chunk
// stays deferred (inserted with the reference unset, set by the last
// pass), as do rows whose reference is outside the chunk.
//
// Invariant: only into an empty target (each row is one insert, the
// chunk one target transaction), so the referenced row is the one this
// transaction writes.
func chunkSelfRefs(m *mapping.Map, from mapping.Side, b *resolve.Batch, preps []initPrep, trs []mapping.Translated) (map[int][]chunkRef, []int) {
	index := map[string]map[string]int{} // referenced columns → tuple → row
	rowsBy := func(cols []string) map[string]int {
		k := strings.Join(cols, ",")
		if ix, ok := index[k]; ok {
			return ix
		}
		ix := make(map[string]int, len(preps))
		vals := make([]any, len(cols))
		for i, p := range preps {
			for j, c := range cols {
				vals[j] = p.row[c]
			}
			if t, ok := resolve.Tuple(vals); ok {
				if _, dup := ix[t]; !dup {
					ix[t] = i
				}
			}
		}
		index[k] = ix
		return ix
	}
	out := map[int][]chunkRef{}
	for i := range preps {
		if !preps[i].deferred {
			continue
		}
		var crs []chunkRef
		all := true
		for _, pl := range trs[i].Lookups {
			spec := m.Lookup(from, pl.Lookup)
			if !spec.SelfReference || pl.Null(spec) {
				continue
			}
			if rec, ok := b.Record(spec, pl); ok {
				if _, ok := resolve.Targets(spec, from.Other(), rec); ok {
					continue
				}
			}
			t, ok := resolve.Tuple(pl.Values)
			j, found := rowsBy(spec.SourceRefs)[t]
			if !ok || !found || j == i {
				all = false
				break
			}
			crs = append(crs, chunkRef{prep: j, cols: spec.TargetColumns, refs: spec.TargetRefs})
		}
		if all && len(crs) > 0 {
			out[i] = crs
		}
	}
	order := orderByRefs(len(preps), out)
	for i := range out {
		preps[i].deferred = false
	}
	return out, order
}

// orderByRefs orders rows 0..n-1 so that every row comes after the rows
// it refers to (refs), by depth of reference, stably. A row whose
// references lead back to itself (a cycle) loses its references in refs:
// it stays deferred, and the rows that refer to it still come after it.
func orderByRefs(n int, refs map[int][]chunkRef) []int {
	const (
		unvisited = iota
		visiting
		visited
	)
	state := make([]int, n)
	var visit func(i int)
	visit = func(i int) {
		state[i] = visiting
		for _, cr := range refs[i] {
			switch state[cr.prep] {
			case unvisited:
				visit(cr.prep)
			case visiting:
				delete(refs, i)
			}
		}
		state[i] = visited
	}
	for i := range n {
		if state[i] == unvisited {
			visit(i)
		}
	}
	depth := make([]int, n)
	known := make([]bool, n)
	var depthOf func(i int) int
	depthOf = func(i int) int {
		if known[i] {
			return depth[i]
		}
		d := 0
		for _, cr := range refs[i] {
			d = max(d, depthOf(cr.prep)+1)
		}
		depth[i], known[i] = d, true
		return d
	}
	order := make([]int, n)
	for i := range n {
		order[i] = i
		depthOf(i)
	}
	slices.SortStableFunc(order, func(a, b int) int { return depth[a] - depth[b] })
	return order
}

// linkChunkRefs sets the in-chunk references of a row's write (the only
// write of a row into an empty target, at index at in the chunk's
// writes) to connector.Ref values naming the referenced rows' writes. It
// reports false, changing nothing, when a referenced row has no write
// that returns the referenced columns (it failed, or was filtered).
func linkChunkRefs(ws []connector.Write, crs []chunkRef, written []connector.Write, writeOf map[int]int, at int) bool {
	if len(ws) != 1 || ws[0].Op == connector.Delete {
		return false
	}
	for _, cr := range crs {
		wj, ok := writeOf[cr.prep]
		if !ok || wj >= at {
			return false
		}
		for _, r := range cr.refs {
			if !slices.Contains(written[wj].Return, r) {
				return false
			}
		}
	}
	vals := ws[0].Values.Clone()
	for _, cr := range crs {
		for k, col := range cr.cols {
			vals[col] = connector.Ref{Write: writeOf[cr.prep], Column: cr.refs[k]}
		}
	}
	ws[0].Values = vals
	return true
}

// resolveDeferred fills in the self-references a pass left NULL (they
// pointed at rows not paired yet), now that every row is paired: a chunk
// of deferred rows at a time, their references resolved in one read.
func (e *Engine) resolveDeferred(ctx context.Context, ms *mapState, from mapping.Side) error {
	keys, err := e.store.Deferred(ctx, ms.name, passName(from))
	if err != nil {
		return err
	}
	m := ms.m
	to := from.Other()
	for len(keys) > 0 {
		part := keys[:min(len(keys), 500)]
		keys = keys[len(part):]
		eqs := make([]change.Row, 0, len(part))
		var named []string
		for _, k := range part {
			kv, err := decodeKey(k)
			if err != nil {
				return err
			}
			eq := change.Row{}
			for i, c := range m.KeyColumns(from) {
				if i < len(kv) {
					eq[c] = kv[i]
				}
			}
			eqs = append(eqs, eq)
			named = append(named, k)
		}
		rows, err := e.readRows(ctx, from, m.Table(from), eqs)
		if err != nil {
			return err
		}
		batch := e.identity.NewBatch(from)
		trs := make([]mapping.Translated, len(rows))
		for i, row := range rows {
			if row == nil {
				continue
			}
			if trs[i], err = m.Translate(from, row); err != nil {
				e.initError(ctx, ms, from, named[i], withCode(problem.TransformFailed, err))
				rows[i] = nil
				continue
			}
			for _, pl := range trs[i].Lookups {
				batch.Add(m.Lookup(from, pl.Lookup), pl)
			}
		}
		if err := e.fetchBatch(ctx, batch, from, 0, nil); err != nil {
			return err
		}
		var ws []connector.Write
		var refs []initRow
		for i, row := range rows {
			if row == nil {
				continue
			}
			vals, _, err := e.resolveBatch(batch, m, from, trs[i], false)
			var tkey change.Row
			if err == nil {
				tkey, err = keyRow(m, to, vals)
			}
			if err != nil {
				e.initError(ctx, ms, from, named[i], err)
				continue
			}
			fix := change.Row{}
			for _, pr := range m.Pairs(from) {
				if pr.Lookup {
					for _, t := range pr.Targets {
						fix[t] = vals[t]
					}
				}
			}
			ws = append(ws, connector.Write{Table: m.Table(to), Key: tkey, Op: connector.UpdateOnly, Values: fix, Ref: len(refs)})
			kv, _ := decodeKey(named[i])
			refs = append(refs, initRow{kv: kv, src: row})
		}
		if _, _, err := e.initApply(ctx, ms, from, to, ws, refs); err != nil {
			return err
		}
		for _, k := range part {
			if err := e.store.DeleteDeferred(ctx, ms.name, passName(from), k); err != nil {
				return err
			}
		}
	}
	return nil
}

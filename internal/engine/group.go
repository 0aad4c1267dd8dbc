package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/dualwrite/dualwrite/internal/apply"
	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/resolve"
	"github.com/dualwrite/dualwrite/internal/store"
)

// maxGroupChanges bounds the changes of a group of source transactions
// applied in one target transaction: a change plans at most three writes,
// so a group never exceeds connector.MaxBatchRows and is never split.
const maxGroupChanges = 300

// streamState is the applied position of one stream on its target as the
// engine last committed it, when known. The engine is the stream's only
// writer; an apply that failed, perhaps after its commit, makes it
// unknown.
type streamState struct {
	pos   change.Position
	known bool
}

// item is one source change of one map in a group, in source order.
type item struct {
	ms      *mapState
	tx      *change.Tx
	c       change.Change
	keyHint string
	src     change.Row
	tr      mapping.Translated
	oldTr   *mapping.Translated // the old row's, when the change moves the key
	skip    bool                // filtered out: nothing to do
	failed  error               // parked before planning
	key     string              // canonical key, once resolved
	tkey    change.Row
	// write is the index in the group's writes of the write that leaves
	// the target row in place (for references to it), or -1.
	write int
	// rec is the record as this change leaves it (nil: deleted or none).
	rec *store.Pair
	// deleted lists canonical keys this change removes (a delete, or the
	// old key of a key change).
	deleted []string
	planned bool
	wrote   bool // some target write was planned
}

// forward is a reference to a record that a later change of the same
// group creates: the referencing row is written with the reference unset,
// then updated once the referenced row is written.
type forward struct {
	waiter int // item index of the referencing change
	spec   mapping.LookupSpec
	vals   []any
}

// groupPlan is the state of planning one group.
type groupPlan struct {
	from    mapping.Side
	items   []item
	writes  []connector.Write
	fixups  map[*mapState][]fixup
	shadows map[*mapState]*shadowSet
	batch   *resolve.Batch
	overlay *resolve.Overlay
	// ahead indexes the records later changes of the group create, by
	// map, column set and values, to the first such change.
	ahead map[string]int
	// pending are forward references by the item they wait for.
	pending map[int][]forward
}

type shadowSet struct {
	states map[string]*shadowState
	keys   map[string][2]change.Row
	order  []string
}

// applyGroup applies consecutive source transactions of side from, for
// every map in maps, as one target transaction (split only past
// connector.MaxBatchRows writes): a reader on the target never sees a
// customer before its new group, or an order without its lines. Changes
// are planned in the order the source wrote them, whatever map they
// belong to, so a reference to a record created earlier (in the same
// transaction or an earlier one) resolves to it. Row failures are parked
// as catch-up errors of their key; only transient failures (the target or
// the control store cannot be reached) are returned, for the caller to
// retry.
func (e *Engine) applyGroup(ctx context.Context, from mapping.Side, txs []change.Tx, maps []*mapState, stream string, st *streamState) error {
	start := e.now()
	maps = slices.Clone(maps)
	slices.SortFunc(maps, func(a, b *mapState) int { return e.orderIndex(a.name) - e.orderIndex(b.name) })
	for _, ms := range maps {
		ms.applyMu.Lock()
		defer ms.applyMu.Unlock()
		ms.parkErr = nil
	}
	to := from.Other()
	// Invariant: a group writes only the transactions after the stream's
	// applied position. A redelivered group may straddle it (an earlier
	// group committed, its acknowledgement was lost), and the target skips
	// only a whole batch. The transactions already applied are still
	// planned, reconciled and their shadows and pairings saved, as a
	// skipped single transaction is: the crash may have come before that.
	var applied change.Position
	if len(txs) > 1 && st != nil {
		if !st.known {
			pos, err := e.sides[to].conn.AppliedPosition(ctx, stream)
			if err != nil {
				return transient(fmt.Errorf("read applied position of %s: %w", stream, err))
			}
			st.pos, st.known = pos, true
		}
		applied = st.pos
	}
	done := func(tx *change.Tx) bool {
		return !applied.IsZero() && !tx.Position.IsZero() && !applied.Less(tx.Position)
	}

	g := &groupPlan{from: from, fixups: map[*mapState][]fixup{}, shadows: map[*mapState]*shadowSet{},
		batch: e.identity.NewBatch(from), overlay: e.identity.NewOverlay(), ahead: map[string]int{}, pending: map[int][]forward{}}
	g.collect(e, txs, maps)
	if err := e.prefetchGroupShadows(ctx, g); err != nil {
		return transient(err)
	}
	// A reference to a record a change of this group creates needs no
	// read of the databases: the group's own write answers it.
	created := func(m resolve.Missing) bool {
		t, ok := resolve.Tuple(m.Vals)
		_, ahead := g.ahead[aheadKey(m.Map, m.Cols, t)]
		return ok && ahead
	}
	if err := e.fetchBatch(ctx, g.batch, from, 0, created); err != nil {
		return err
	}
	for i := range g.items {
		if err := e.planItem(ctx, g, i, done(g.items[i].tx)); err != nil {
			return err
		}
	}

	chunks := apply.Split(g.writes)
	if len(txs) > 1 && len(chunks) > 1 {
		// Invariant: a group is never split; its bound makes this
		// unreachable, and a split group could not be skipped exactly
		// on redelivery.
		return fmt.Errorf("a group of %d transactions planned %d writes, above the limit of %d", len(txs), len(g.writes), connector.MaxBatchRows)
	}
	returned := map[int]change.Row{}
	failedItems := map[int]error{}
	skippedItems := map[int]bool{}
	offset := 0
	for k, chunk := range chunks {
		pos := txs[len(txs)-1].Position
		if len(chunks) > 1 {
			// Invariant: a source transaction split into several target
			// transactions records (LSN, part) so a redelivery skips the
			// parts already applied.
			pos.Sub = uint32(k + 1)
		}
		// References into an earlier part, committed already, become
		// plain values.
		chunk = apply.Rebase(chunk, offset, returned)
		res, err := e.applyWrites(ctx, to, connector.Batch{Stream: stream, Position: pos, Writes: chunk})
		if err != nil {
			if st != nil {
				st.known = false // the commit may have happened
			}
			return err
		}
		if e.log.Enabled(ctx, slog.LevelDebug) {
			e.log.Debug("group applied", "direction", e.direction(from), "stream", stream, "position", pos.String(),
				"transactions", len(txs), "writes", len(chunk), "skipped", res.Skipped, "failed", len(res.Failed), "unmatched", len(res.Unmatched))
		}
		if st != nil && st.known && st.pos.Less(pos) {
			st.pos = pos
		}
		for i, row := range res.Returned {
			returned[offset+i] = row
		}
		for _, w := range chunk {
			if res.Skipped {
				skippedItems[w.Ref] = true
			}
		}
		for _, f := range res.Failed {
			if _, dup := failedItems[f.Ref]; !dup {
				failedItems[f.Ref] = f.Err
			}
		}
		offset += len(chunk)
	}
	// Keys that held references to rows written in this transaction now
	// hold the values those rows got.
	for i := range g.items {
		if k, ok := apply.Settle(g.items[i].tkey, returned); ok {
			g.items[i].tkey = k
		} else {
			g.items[i].tkey = nil
		}
	}
	for _, ss := range g.shadows {
		for k, keys := range ss.keys {
			l, okL := apply.Settle(keys[0], returned)
			r, okR := apply.Settle(keys[1], returned)
			if !okL || !okR {
				delete(ss.keys, k) // its row was not written: nothing to reconcile
				continue
			}
			ss.keys[k] = [2]change.Row{l, r}
		}
	}
	for i, err := range failedItems {
		it := &g.items[i]
		e.park(ctx, it.ms, from, *it.tx, it.c, it.key, problem.Wrap(problem.RowWriteFailed, err, "the %s side rejected the write", e.sideName(to)))
	}
	appliedByMap := map[*mapState]int64{}
	for i := range g.items {
		it := &g.items[i]
		if it.planned && it.wrote && failedItems[i] == nil && !skippedItems[i] {
			appliedByMap[it.ms]++
		}
	}
	for ms, n := range appliedByMap {
		ms.applied[from].Add(n)
		if e.obs != nil {
			e.obs.Applied(ms.name, e.direction(from), int(n), e.now().Sub(start))
		}
	}
	if err := e.savePairings(ctx, g, failedItems, returned); err != nil {
		return err
	}
	for _, ms := range maps {
		if err := e.finishMap(ctx, ms, from, g.shadows[ms], g.fixups[ms]); err != nil {
			return err
		}
		if ms.parkErr != nil {
			return transient(ms.parkErr)
		}
		if appliedByMap[ms] > 0 {
			if err := e.store.TouchSync(ctx, ms.name); err != nil {
				return transient(fmt.Errorf("record last sync of map %s: %w", ms.name, err))
			}
		}
	}
	return nil
}

// orderIndex is a map's place in the dependency order.
func (e *Engine) orderIndex(name string) int {
	return slices.Index(e.order, name)
}

// collect splits the group's changes into items, translates them and
// registers their lookups with the batch.
func (g *groupPlan) collect(e *Engine, txs []change.Tx, maps []*mapState) {
	byTable := map[string][]*mapState{}
	for _, ms := range maps {
		t := ms.m.Table(g.from)
		byTable[t] = append(byTable[t], ms)
	}
	for t := range txs {
		tx := &txs[t]
		for _, c := range tx.Changes {
			if c.Op == change.Truncate {
				continue // handled by the map's on_truncate before planning (truncate.go)
			}
			for _, ms := range byTable[c.Table] {
				it := item{ms: ms, tx: tx, c: c, keyHint: keyHintOf(ms.m, g.from, c), write: -1}
				g.prepare(&it)
				g.items = append(g.items, it)
			}
		}
	}
	// Index what the group creates, so a reference to a record written
	// later in the group is recognised (a cycle, a self-reference).
	for i := range g.items {
		it := &g.items[i]
		if it.failed != nil || it.skip || it.c.Op == change.Delete || !e.identity.Needed(it.ms.name) {
			continue
		}
		for _, set := range e.identity.Sets(it.ms.name, g.from) {
			vals := make([]any, len(set))
			for j, col := range set {
				vals[j] = it.src[col]
			}
			if t, ok := resolve.Tuple(vals); ok {
				k := aheadKey(it.ms.name, set, t)
				if _, seen := g.ahead[k]; !seen {
					g.ahead[k] = i
				}
			}
		}
	}
}

func aheadKey(name string, cols []string, tuple string) string {
	return name + "\x00" + fmt.Sprint(cols) + "\x00" + tuple
}

// prepare translates an item's source row (and the old row of a key
// change) and registers the lookups to resolve.
func (g *groupPlan) prepare(it *item) {
	m := it.ms.m
	c := it.c
	src := c.New
	if c.Op == change.Delete {
		src = c.Old
	}
	if src == nil {
		it.failed = problem.New(problem.KeyMissing, "the change carries no row image")
		return
	}
	it.src = src
	if c.Op != change.Delete {
		ok, err := m.Match(g.from, src)
		if err != nil {
			it.failed = problem.Wrap(problem.TransformFailed, err, "filter failed")
			return
		}
		if !ok {
			it.skip = true
			return
		}
	}
	tr, err := m.Translate(g.from, src)
	if err != nil {
		it.failed = withCode(problem.TransformFailed, err)
		return
	}
	it.tr = tr
	g.register(m, tr)
	if c.Op == change.Update && c.Old != nil {
		oldKey, err1 := m.KeyOf(g.from, c.Old)
		newKey, err2 := m.KeyOf(g.from, c.New)
		if err1 == nil && err2 == nil && keyJSON(oldKey) != keyJSON(newKey) {
			otr, err := m.Translate(g.from, c.Old)
			if err != nil {
				it.failed = withCode(problem.TransformFailed, err)
				return
			}
			it.oldTr = &otr
			g.register(m, otr)
		}
	}
}

func (g *groupPlan) register(m *mapping.Map, tr mapping.Translated) {
	for _, pl := range tr.Lookups {
		g.batch.Add(m.Lookup(g.from, pl.Lookup), pl)
	}
}

// planItem resolves one change's references, applies the map and the
// conflict rule, and appends its writes.
func (e *Engine) planItem(ctx context.Context, g *groupPlan, i int, alreadyApplied bool) error {
	it := &g.items[i]
	ms, m, from := it.ms, it.ms.m, g.from
	to := from.Other()
	defer e.settleWaiters(ctx, g, i)
	if ms.parked[it.keyHint] {
		// Invariant: a change to a key that has a parked catch-up error
		// waits behind it, so the key's changes stay in order.
		e.park(ctx, ms, from, *it.tx, it.c, it.keyHint, problem.New(problem.WaitingBehindError, "waiting behind an earlier failed change to the same key"))
		return nil
	}
	if it.failed != nil {
		e.park(ctx, ms, from, *it.tx, it.c, it.keyHint, it.failed)
		return nil
	}
	if it.skip {
		return nil
	}
	values, unsettled, waitErr := e.resolveLookups(ctx, g, i, it.tr)
	if waitErr != nil {
		e.parkWaiting(ctx, it, from, waitErr)
		return nil
	}
	tc := translatedChange{values: values, unsettled: unsettled}
	if it.oldTr != nil {
		old, _, err := e.resolveLookups(ctx, g, i, *it.oldTr)
		if err != nil {
			e.parkWaiting(ctx, it, from, err)
			return nil
		}
		tc.oldValues = old
	}
	key, err := e.canonicalKey(m, from, it.src, values)
	if err != nil {
		e.park(ctx, ms, from, *it.tx, it.c, it.keyHint, err)
		return nil
	}
	tc.key = key
	if key != it.keyHint && ms.parked[key] {
		e.park(ctx, ms, from, *it.tx, it.c, key, problem.New(problem.WaitingBehindError, "waiting behind an earlier failed change to the same key"))
		return nil
	}
	it.key = key
	at := it.tx.CommitTime
	if !it.c.At.IsZero() {
		at = it.c.At
	}
	ss := g.shadows[ms]
	if ss == nil {
		ss = &shadowSet{states: map[string]*shadowState{}, keys: map[string][2]change.Row{}}
		g.shadows[ms] = ss
	}
	p, err := e.plan(ctx, ms, from, at, it.c, ss.states, tc)
	if err != nil {
		if isTransient(err) {
			return err
		}
		e.park(ctx, ms, from, *it.tx, it.c, key, err)
		return nil
	}
	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.Debug("change planned", "map", ms.name, "direction", e.direction(from), "key", p.key, "op", it.c.Op.String(),
			"at", at.UnixNano(), "writes", describeWrites(p.target), "fixups", describeWrites(p.fixups), "skipped", p.skipped)
	}
	it.planned = true
	if p.shadow != nil {
		if _, seen := ss.states[p.key]; !seen || !slices.Contains(ss.order, p.key) {
			ss.order = append(ss.order, p.key)
		}
		ss.states[p.key] = p.shadow
		if p.keys[0] != nil {
			ss.keys[p.key] = p.keys
		}
	}
	tkey, _ := keyRow(m, to, values)
	it.tkey = tkey
	idCols := e.identity.Columns(ms.name, to)
	if !alreadyApplied {
		for _, w := range p.target {
			w.Ref = i
			if w.Op != connector.Delete && e.identity.Referenced(ms.name, to) {
				w.Return = idCols
			}
			g.writes = append(g.writes, w)
			it.wrote = true
			if w.Op != connector.Delete {
				it.write = len(g.writes) - 1
			}
		}
	}
	for _, w := range p.fixups {
		g.fixups[ms] = append(g.fixups[ms], fixup{w: w, it: it})
	}

	// The record as this change leaves it, for later references in the
	// group and for the pairing saved after the commit; only records some
	// lookup references are paired.
	if !e.identity.Needed(ms.name) {
		return nil
	}
	if it.oldTr != nil && tc.oldValues != nil {
		if oldKey, err := e.canonicalKey(m, from, it.c.Old, tc.oldValues); err == nil && oldKey != key {
			it.deleted = append(it.deleted, oldKey)
			g.overlay.Delete(ms.name, oldKey)
		}
	}
	switch {
	case it.c.Op == change.Delete:
		if p.skipped {
			break // the record lives on: a newer write on the other side won
		}
		it.deleted = append(it.deleted, key)
		g.overlay.Delete(ms.name, key)
	case p.skipped && len(p.target) == 0:
		// Nothing written: the record is as it was.
	default:
		rec := store.Pair{Key: key}
		rec.Rows[from] = e.identity.Project(ms.name, from, it.src)
		trow := tkey.Clone()
		for k, v := range values {
			trow[k] = v
		}
		rec.Rows[to] = e.identity.Project(ms.name, to, trow)
		if it.write >= 0 {
			for _, col := range idCols {
				if v, ok := rec.Rows[to][col]; !ok || v == nil {
					rec.Rows[to][col] = connector.Ref{Write: it.write, Column: col}
				}
			}
		}
		it.rec = &rec
		g.overlay.Set(ms.name, rec)
	}
	return nil
}

// resolveLookups resolves an item's lookups through the group's overlay
// and the record pairing. A reference to a record a later change of the
// group creates is left unset (unsettled) and set once that record is
// written. A reference to no record at all is a DW3006 error: the change
// waits for it.
func (e *Engine) resolveLookups(ctx context.Context, g *groupPlan, i int, tr mapping.Translated) (change.Row, map[string]bool, error) {
	it := &g.items[i]
	m, from := it.ms.m, g.from
	to := from.Other()
	vals := tr.Values.Clone()
	if vals == nil {
		vals = change.Row{}
	}
	var unsettled map[string]bool
	for _, pl := range tr.Lookups {
		spec := m.Lookup(from, pl.Lookup)
		if pl.Null(spec) {
			for _, col := range spec.TargetColumns {
				vals[col] = nil
			}
			continue
		}
		if slices.Contains(pl.Values[:spec.Scope], nil) {
			return nil, nil, problem.New(problem.KeyMissing, "lookup %s: the company column %s is empty, so the reference %v cannot be resolved within a company; give the row its company",
				spec.Map, spec.SourceColumns[0], pl.Values[spec.Scope:])
		}
		rec, found := e.lookupRecord(g, spec, pl)
		if found {
			if targets, ok := resolve.Targets(spec, to, rec); ok {
				for col, v := range targets {
					vals[col] = v
				}
				continue
			}
		}
		if t, ok := resolve.Tuple(pl.Values); ok {
			if j, ok := g.ahead[aheadKey(spec.Map, spec.SourceRefs, t)]; ok && j >= i {
				g.pending[j] = append(g.pending[j], forward{waiter: i, spec: spec, vals: pl.Values})
				if unsettled == nil {
					unsettled = map[string]bool{}
				}
				for _, col := range spec.TargetColumns {
					vals[col] = nil
					unsettled[col] = true
				}
				continue
			}
		}
		return nil, nil, &waitingError{spec: spec, vals: pl.Values, err: problem.New(problem.WaitingForReference,
			"lookup %s: %s %s has no record on %s yet (filtered out, never created, or not synced); the change waits and is retried when that record arrives",
			spec.Map, showCols(spec.SourceColumns), showVals(pl.Values), e.sideName(to))}
	}
	return vals, unsettled, nil
}

// lookupRecord finds the record a lookup references: the group's own
// version first, then the stored pairing.
func (e *Engine) lookupRecord(g *groupPlan, spec mapping.LookupSpec, pl mapping.PendingLookup) (store.Pair, bool) {
	if rec, found, touched := g.overlay.Find(spec.Map, g.from, spec.SourceRefs, pl.Values); touched {
		if found {
			// Identity columns this group did not write (a surrogate of a
			// record it only updated) come from the stored pairing.
			if stored, ok := g.batch.Record(spec, pl); ok {
				for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
					for k, v := range stored.Rows[s] {
						if cur, ok := rec.Rows[s][k]; !ok || cur == nil {
							rec.Rows[s] = rec.Rows[s].Clone()
							rec.Rows[s][k] = v
						}
					}
				}
			}
		}
		return rec, found
	}
	return g.batch.Record(spec, pl)
}

// settleWaiters writes the references that earlier changes of the group
// made to the record item i creates, now that its write is planned: an
// update of each referencing row, later in the same target transaction.
// When item i wrote nothing, the referencing changes wait for the record.
func (e *Engine) settleWaiters(ctx context.Context, g *groupPlan, i int) {
	waiters := g.pending[i]
	delete(g.pending, i)
	it := &g.items[i]
	to := g.from.Other()
	for _, f := range waiters {
		w := &g.items[f.waiter]
		if w.tkey == nil || !w.planned {
			continue // the referencing change itself did not get planned
		}
		if it.rec == nil || it.write < 0 {
			e.parkWaiting(ctx, w, g.from, &waitingError{spec: f.spec, vals: f.vals, err: problem.New(problem.WaitingForReference,
				"lookup %s: %s %s is referenced but its record was not written on %s; the change waits and is retried when that record arrives",
				f.spec.Map, showCols(f.spec.SourceColumns), showVals(f.vals), e.sideName(to))})
			continue
		}
		targets, ok := resolve.Targets(f.spec, to, *it.rec)
		if !ok {
			continue
		}
		g.writes = append(g.writes, connector.Write{Table: w.ms.m.Table(to), Key: w.tkey, Op: connector.UpdateOnly, Values: targets, Ref: f.waiter})
	}
}

// waitingError is a reference to a record that has not arrived.
type waitingError struct {
	spec mapping.LookupSpec
	vals []any
	err  error
}

func (w *waitingError) Error() string { return w.err.Error() }
func (w *waitingError) Unwrap() error { return w.err }

// parkWaiting parks an item whose reference has not arrived, and records
// what it waits for so that it is retried when the record arrives.
func (e *Engine) parkWaiting(ctx context.Context, it *item, from mapping.Side, err error) {
	key := it.key
	if key == "" {
		key = it.keyHint
	}
	e.park(ctx, it.ms, from, *it.tx, it.c, key, err)
	var w *waitingError
	if we, ok := err.(*waitingError); ok {
		w = we
	}
	if w == nil {
		return
	}
	t, ok := resolve.Tuple(w.vals)
	if !ok {
		return
	}
	ref := store.PairRef{Side: int(from), Cols: joinCols(w.spec.SourceRefs), Val: t}
	if err := e.store.WaitAdd(context.WithoutCancel(ctx), store.Wait{Map: it.ms.name, Key: key, RefMap: w.spec.Map, Ref: ref}); err != nil {
		e.log.Error("record awaited reference failed", "map", it.ms.name, "err", err)
	}
}

// prefetchGroupShadows reads, in one query per map, the conflict shadows
// of the left-side changes' records (whose canonical key is known before
// planning).
func (e *Engine) prefetchGroupShadows(ctx context.Context, g *groupPlan) error {
	if g.from != mapping.Left {
		return nil
	}
	keys := map[*mapState][]string{}
	for i := range g.items {
		it := &g.items[i]
		if len(bothWayPairs(it.ms.m, g.from)) > 0 {
			keys[it.ms] = append(keys[it.ms], it.keyHint)
		}
	}
	for ms, ks := range keys {
		if err := e.prefetchShadows(ctx, ms, ks); err != nil {
			return err
		}
	}
	return nil
}

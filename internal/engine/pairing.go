package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/apply"
	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/resolve"
	"github.com/dualwrite/dualwrite/internal/store"
)

// savePairings stores the record pairing as the group left it: the
// records its applied changes created or changed, with the surrogates the
// target returned, and the records it deleted.
//
// Invariant: the pairing is saved before the source position is
// acknowledged (the caller acknowledges after applyGroup returns), so a
// crash replays the group, whose target writes are skipped as applied and
// whose pairing is saved again (surrogates read back from the target).
func (e *Engine) savePairings(ctx context.Context, g *groupPlan, failed map[int]error, returned map[int]change.Row) error {
	to := g.from.Other()
	type final struct {
		rec  *store.Pair
		tkey change.Row
	}
	byMap := map[string]map[string]*final{}
	var order []string
	maps := map[string]*mapState{}
	for i := range g.items {
		it := &g.items[i]
		if !it.planned || failed[i] != nil || (it.rec == nil && len(it.deleted) == 0) {
			continue
		}
		name := it.ms.name
		maps[name] = it.ms
		if byMap[name] == nil {
			byMap[name] = map[string]*final{}
			order = append(order, name)
		}
		for _, k := range it.deleted {
			byMap[name][k] = &final{}
		}
		if it.rec != nil {
			rec := *it.rec
			rec.Rows[to] = rec.Rows[to].Clone()
			for col, v := range rec.Rows[to] {
				if r, ok := v.(connector.Ref); ok {
					if got, ok := returned[r.Write][r.Column]; ok {
						rec.Rows[to][col] = got
					} else {
						delete(rec.Rows[to], col)
					}
				}
			}
			byMap[name][rec.Key] = &final{rec: &rec, tkey: it.tkey}
		}
	}
	for _, name := range order {
		ms := maps[name]
		var put []store.Pair
		var deleted, keys []string
		for k, f := range byMap[name] {
			keys = append(keys, k)
			if f.rec == nil {
				deleted = append(deleted, k)
			}
		}
		stored, err := e.identity.Get(ctx, name, keys)
		if err != nil {
			return transient(err)
		}
		var unknown []change.Row // target keys whose identity columns are missing
		var unknownKeys []string
		for _, k := range keys {
			f := byMap[name][k]
			if f.rec == nil {
				continue
			}
			rec := *f.rec
			if old, ok := stored[k]; ok {
				for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
					merged := old.Rows[s].Clone()
					if merged == nil {
						merged = change.Row{}
					}
					for c, v := range rec.Rows[s] {
						merged[c] = v
					}
					rec.Rows[s] = merged
				}
			}
			if missingColumns(rec.Rows[to], e.identity.Columns(name, to)) && f.tkey != nil {
				unknown = append(unknown, f.tkey)
				unknownKeys = append(unknownKeys, k)
			}
			*f.rec = rec
		}
		if len(unknown) > 0 {
			// A redelivered group whose writes were skipped as applied:
			// the target's surrogates are read back.
			rows, err := e.readRows(ctx, to, ms.m.Table(to), unknown)
			if err != nil {
				return err
			}
			for i, row := range rows {
				if row == nil {
					continue
				}
				f := byMap[name][unknownKeys[i]]
				for c, v := range e.identity.Project(name, to, row) {
					f.rec.Rows[to][c] = v
				}
			}
		}
		for _, k := range keys {
			if f := byMap[name][k]; f.rec != nil {
				put = append(put, *f.rec)
			}
		}
		if err := e.identity.Put(ctx, name, put, deleted); err != nil {
			return transient(err)
		}
		if len(put) > 0 {
			e.nudgeWaiters()
		}
	}
	return nil
}

func missingColumns(row change.Row, cols []string) bool {
	for _, c := range cols {
		if v, ok := row[c]; !ok || v == nil {
			return true
		}
	}
	return false
}

// fixup is a write back on the source side that a change's plan needs
// (a one-way column the target derives), with the change it belongs to.
type fixup struct {
	w  connector.Write
	it *item
}

// finishMap reconciles the records a group touched in one map, writes
// its fix-ups and saves its conflict shadows.
func (e *Engine) finishMap(ctx context.Context, ms *mapState, from mapping.Side, ss *shadowSet, fixups []fixup) error {
	// owner[s][i] says what write i on side s belongs to: a fix-up's
	// change, or a reconciled record (by its index in todo).
	type owner struct {
		it  *item
		rec int
	}
	var side [2][]connector.Write
	var owners [2][]owner
	for _, f := range fixups {
		side[from] = append(side[from], f.w)
		owners[from] = append(owners[from], owner{it: f.it, rec: -1})
	}
	var todo []string
	if ss != nil {
		// Reconcile every record the group touched, once, from the final
		// shadow: both sides end as the conflict rule says.
		var ws [2][]connector.Write
		var err error
		ws, todo, err = e.reconcileAll(ctx, ms, ss.order, ss.states, ss.keys)
		if err != nil {
			return err
		}
		for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
			for _, w := range ws[s] {
				side[s] = append(side[s], w)
				owners[s] = append(owners[s], owner{rec: w.Ref})
			}
		}
	}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		ws := side[s]
		for start := 0; start < len(ws); start += connector.MaxBatchRows {
			chunk := slices.Clone(ws[start:min(len(ws), start+connector.MaxBatchRows)])
			for i := range chunk {
				chunk[i].Ref = start + i
			}
			res, err := e.applyWrites(ctx, s, connector.Batch{Stream: ms.name + ":reconcile", Writes: chunk})
			if err != nil {
				return err
			}
			for _, f := range res.Failed {
				// Invariant: no write path logs a failure and moves on: a
				// reconciliation or fix-up write the side rejects parks its
				// key as a catch-up error, retried like any other.
				o := owners[s][f.Ref]
				cause := problem.Wrap(problem.RowWriteFailed, f.Err, "the %s side rejected the write that makes the record match the other side", e.sideName(s))
				if o.it != nil {
					e.park(ctx, ms, from, *o.it.tx, o.it.c, o.it.key, cause)
					continue
				}
				k := todo[o.rec]
				e.parkReconcile(ctx, ms, s, k, ss.keys[k], cause)
			}
		}
	}
	if ss == nil {
		return nil
	}
	// Invariant: the conflict shadow is saved only after the target writes
	// and the reconciliation are done; a crash before replays the
	// transaction, which plans the same writes again from the unchanged
	// shadow (the target skips what it already has; reconciliation is
	// compare-and-set on what it reads).
	return e.saveShadows(ctx, ms, ss.order, ss.states)
}

// parkReconcile parks a record whose reconciliation write side s rejected.
// The parked change is the other side's row as it is now, stamped older
// than any write: retrying it changes nothing by itself, and the
// reconciliation that follows it writes side s again.
func (e *Engine) parkReconcile(ctx context.Context, ms *mapState, s mapping.Side, key string, keys [2]change.Row, cause error) {
	other := s.Other()
	row, err := e.readRow(ctx, other, ms.m.Table(other), keys[other])
	if err != nil || row == nil {
		row = keys[other]
	}
	c := change.Change{Table: ms.m.Table(other), Op: change.Update, New: row}
	e.park(ctx, ms, other, change.Tx{Changes: []change.Change{c}}, c, key, cause)
}

// nudgeWaiters asks the waiter loop to look for parked keys whose
// references arrived.
func (e *Engine) nudgeWaiters() {
	select {
	case e.waitersNudge <- struct{}{}:
	default:
	}
}

// runWaiters retries parked keys whose awaited reference has arrived, as
// soon as a pairing is saved and every few seconds: a reference that was
// missing parks only its key, which then catches up by itself.
func (e *Engine) runWaiters(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.waitersNudge:
		}
		ready, err := e.store.WaitsReady(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("read parked keys whose references arrived failed", "err", err)
			}
			continue
		}
		for _, w := range ready {
			if err := e.retryKey(ctx, w.Map, w.Key); err != nil && ctx.Err() == nil {
				e.log.Warn("retry of a key whose reference arrived failed", "map", w.Map, "err", err)
			}
		}
	}
}

// retryKey retries the catch-up error of one key.
func (e *Engine) retryKey(ctx context.Context, name, key string) error {
	ms, ok := e.maps[name]
	if !ok || ms.m == nil {
		return e.store.WaitsClear(ctx, name, key)
	}
	if st := e.statusOf(ms); st != Running {
		return nil // retried when the map runs again
	}
	errs, err := e.store.CatchUpErrors(ctx, name)
	if err != nil {
		return err
	}
	for _, ce := range errs {
		if ce.Key != key {
			continue
		}
		ok, err := e.retryOne(ctx, ms, ce)
		if err != nil {
			return err
		}
		if ok {
			e.activity(ctx, name, "engine", "run", fmt.Sprintf("key %s caught up: the record it referenced arrived", keyText(key)))
		}
		return nil
	}
	// No catch-up error left (retried or discarded meanwhile).
	return e.store.WaitsClear(ctx, name, key)
}

// translateRow maps one row of side from to the other side, resolving its
// lookups through the record pairing. It serves the rare paths that look
// at one row (a record re-created by reconciliation, derived columns);
// changes and initial sync chunks resolve in batches.
// With deferSelf, a self-reference to a record not paired yet is left
// NULL (the initial sync fills it in last).
func (e *Engine) translateRow(ctx context.Context, m *mapping.Map, from mapping.Side, row change.Row, deferSelf bool) (change.Row, error) {
	tr, err := m.Translate(from, row)
	if err != nil {
		return nil, withCode(problem.TransformFailed, err)
	}
	b := e.identity.NewBatch(from)
	for _, pl := range tr.Lookups {
		b.Add(m.Lookup(from, pl.Lookup), pl)
	}
	if err := e.fetchBatch(ctx, b, from, 0, nil); err != nil {
		return nil, err
	}
	vals, _, err := e.resolveBatch(b, m, from, tr, deferSelf)
	return vals, err
}

// resolveBatch writes the lookups of a translated row from a fetched
// batch. With deferSelf, an unresolved self-reference is left NULL and
// reported as deferred.
func (e *Engine) resolveBatch(b *resolve.Batch, m *mapping.Map, from mapping.Side, tr mapping.Translated, deferSelf bool) (change.Row, bool, error) {
	deferred := false
	vals := tr.Values
	if vals == nil {
		vals = change.Row{}
	}
	for _, pl := range tr.Lookups {
		spec := m.Lookup(from, pl.Lookup)
		if pl.Null(spec) {
			for _, col := range spec.TargetColumns {
				vals[col] = nil
			}
			continue
		}
		rec, ok := b.Record(spec, pl)
		var targets change.Row
		if ok {
			targets, ok = resolve.Targets(spec, from.Other(), rec)
		}
		if !ok && spec.SelfReference && deferSelf {
			for _, col := range spec.TargetColumns {
				vals[col] = nil
			}
			deferred = true
			continue
		}
		if !ok {
			return nil, false, problem.New(problem.LookupUnresolved, "lookup %s: %s %s has no record on %s; sync that map first (run it with --with-related)",
				spec.Map, showCols(spec.SourceColumns), showVals(pl.Values), e.sideName(from.Other()))
		}
		for col, v := range targets {
			vals[col] = v
		}
	}
	return vals, deferred, nil
}

func showCols(cols []string) string {
	if len(cols) == 1 {
		return cols[0]
	}
	return "(" + strings.Join(cols, ", ") + ")"
}

func showVals(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprint(v)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func joinCols(cols []string) string { return strings.Join(cols, ",") }

// maxPairDepth bounds how far pairing from the databases follows the keys
// of referenced records through their own references (a customer's key
// holds its company, resolved through the companies map).
const maxPairDepth = 3

// fetchBatch reads a batch's references from the pairing and pairs, from
// the databases, the records it does not know yet: rows that existed on
// both sides before the pairing did (a map run with its initial sync
// skipped, an upgrade). That costs one keyed read per side and related
// map, only when something is missing.
//
// known, when not nil, tells the references the caller resolves without
// the pairing (a record a later change of the same group creates): those
// are not looked for in the databases.
func (e *Engine) fetchBatch(ctx context.Context, b *resolve.Batch, from mapping.Side, depth int, known func(resolve.Missing) bool) error {
	if err := b.Fetch(ctx); err != nil {
		return transient(fmt.Errorf("resolve references: %w", err))
	}
	missing := b.Missing()
	if known != nil {
		missing = slices.DeleteFunc(missing, known)
	}
	if len(missing) == 0 || depth >= maxPairDepth {
		return nil
	}
	paired, err := e.pairFromDatabases(ctx, from, missing, depth)
	if err != nil {
		return err
	}
	if paired == 0 {
		return nil
	}
	if err := b.Refetch(ctx); err != nil {
		return transient(fmt.Errorf("resolve references: %w", err))
	}
	return nil
}

// pairFromDatabases pairs the records the missing references name, where
// the row exists on both sides: the source row is found by the referenced
// values, its target row by its translated key. It returns how many it
// paired.
func (e *Engine) pairFromDatabases(ctx context.Context, from mapping.Side, missing []resolve.Missing, depth int) (int, error) {
	to := from.Other()
	type group struct {
		cols []string
		eqs  []change.Row
	}
	groups := map[string]*group{}
	var order []string
	for _, m := range missing {
		k := m.Map + "\x00" + joinCols(m.Cols)
		gr := groups[k]
		if gr == nil {
			gr = &group{cols: m.Cols}
			groups[k] = gr
			order = append(order, k)
		}
		eq := change.Row{}
		for i, c := range m.Cols {
			eq[c] = m.Vals[i]
		}
		gr.eqs = append(gr.eqs, eq)
	}
	paired := 0
	for _, k := range order {
		name := k[:strings.IndexByte(k, 0)]
		ms, ok := e.maps[name]
		if !ok || ms.m == nil {
			continue
		}
		rm := ms.m
		srcRows, err := e.readRows(ctx, from, rm.Table(from), groups[k].eqs)
		if err != nil {
			return paired, err
		}
		var found []change.Row
		for _, r := range srcRows {
			if r != nil {
				found = append(found, r)
			}
		}
		if len(found) == 0 {
			continue
		}
		// The target key of each source row: its key columns translated,
		// references among them resolved (one level deeper).
		b := e.identity.NewBatch(from)
		trs := make([]mapping.Translated, len(found))
		for i, r := range found {
			if trs[i], err = rm.Translate(from, r); err != nil {
				continue
			}
			for _, pl := range trs[i].Lookups {
				b.Add(rm.Lookup(from, pl.Lookup), pl)
			}
		}
		if err := e.fetchBatch(ctx, b, from, depth+1, nil); err != nil {
			return paired, err
		}
		var tkeys []change.Row
		var srcOf []change.Row
		var keys []string
		for i, r := range found {
			vals, _, err := e.resolveBatch(b, rm, from, trs[i], true)
			if err != nil {
				continue
			}
			tkey, err := keyRow(rm, to, vals)
			if err != nil {
				continue
			}
			key, err := e.canonicalKey(rm, from, r, vals)
			if err != nil {
				continue
			}
			tkeys, srcOf, keys = append(tkeys, tkey), append(srcOf, r), append(keys, key)
		}
		if len(tkeys) == 0 {
			continue
		}
		tRows, err := e.readRows(ctx, to, rm.Table(to), tkeys)
		if err != nil {
			return paired, err
		}
		var put []store.Pair
		for i, tr := range tRows {
			if tr == nil {
				continue // not on the other side yet: the reference waits
			}
			rec := store.Pair{Key: keys[i]}
			rec.Rows[from] = e.identity.Project(name, from, srcOf[i])
			rec.Rows[to] = e.identity.Project(name, to, tr)
			put = append(put, rec)
		}
		if err := e.identity.Put(ctx, name, put, nil); err != nil {
			return paired, transient(err)
		}
		paired += len(put)
	}
	return paired, nil
}

// applyWrites applies a batch on side to (internal/apply): whole, or with
// each write isolated when that fails. A side that cannot take the batch
// at all is a transient failure.
func (e *Engine) applyWrites(ctx context.Context, to mapping.Side, b connector.Batch) (connector.Result, error) {
	res, err := apply.Batch(ctx, e.sides[to].conn, b)
	if err != nil {
		return connector.Result{}, transient(fmt.Errorf("apply batch to %s: %w", e.sideName(to), err))
	}
	return res, nil
}

// readRows reads rows of side s by key (internal/apply); a failure is
// transient.
func (e *Engine) readRows(ctx context.Context, s mapping.Side, table string, keys []change.Row) ([]change.Row, error) {
	rows, err := apply.ReadRows(ctx, e.sides[s].conn, table, keys)
	if err != nil {
		return nil, transient(fmt.Errorf("on %s: %w", e.sideName(s), err))
	}
	return rows, nil
}

// readRow reads one row of side s by key, or nil; a failure is transient.
func (e *Engine) readRow(ctx context.Context, s mapping.Side, table string, key change.Row) (change.Row, error) {
	row, err := apply.ReadRow(ctx, e.sides[s].conn, table, key)
	if err != nil {
		return nil, transient(fmt.Errorf("on %s: %w", e.sideName(s), err))
	}
	return row, nil
}

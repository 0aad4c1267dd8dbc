package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/store"
)

// planned is what one source change turns into.
type planned struct {
	key     string            // canonical key (left-side key values as JSON)
	keys    [2]change.Row     // the record's integration key on each side
	target  []connector.Write // writes on the other side
	fixups  []connector.Write // writes on the source side, so both sides hold the winner
	shadow  *shadowState      // the shadow to save before applying; nil when none
	skipped bool              // filtered out, or lost every column to a newer change
}

// applyTx applies one map's share of a source transaction on the other
// side: one target transaction, split at connector.MaxBatchRows writes.
// Row failures are parked as catch-up errors; only transient failures
// (the target cannot be reached) are returned, for the caller to retry.
func (e *Engine) applyTx(ctx context.Context, ms *mapState, from mapping.Side, tx change.Tx) error {
	return e.applyTxs(ctx, ms, from, []change.Tx{tx})
}

// maxGroupChanges bounds the changes of a group of source transactions
// applied in one target transaction: a change plans at most three writes,
// so a group never exceeds connector.MaxBatchRows and is never split.
const maxGroupChanges = 300

// applyTxs applies consecutive source transactions of one map and
// direction. More than one (a group, formed only under backlog) commit
// together in one target transaction with the last one's position: each
// source transaction stays whole, and a redelivery skips what was applied.
func (e *Engine) applyTxs(ctx context.Context, ms *mapState, from mapping.Side, txs []change.Tx) error {
	// Hook (stall.go, truncate.go): a map the engine is stopping takes no
	// more changes; a truncate is handled as the map's on_truncate says.
	if ms.att.halted.Load() {
		return nil
	}
	if truncateIndex(txs) >= 0 {
		return e.applyTruncating(ctx, ms, from, txs)
	}
	ms.applyMu.Lock()
	defer ms.applyMu.Unlock()
	to := from.Other()
	stream := ms.name + ":" + e.direction(from)
	// Invariant: a group writes only the transactions after the stream's
	// applied position. A redelivered group may straddle it (an earlier
	// group committed, its acknowledgement was lost), and the target skips
	// only a whole batch. The transactions already applied are still
	// planned, reconciled and their shadows saved, as a skipped single
	// transaction is: the crash may have come before that.
	var applied change.Position
	if len(txs) > 1 {
		if !ms.streamKnown[from] {
			pos, err := e.sides[to].conn.AppliedPosition(ctx, stream)
			if err != nil {
				return transient(fmt.Errorf("read applied position of %s: %w", stream, err))
			}
			ms.streamPos[from], ms.streamKnown[from] = pos, true
		}
		applied = ms.streamPos[from]
	}
	done := func(tx *change.Tx) bool {
		return !applied.IsZero() && !tx.Position.IsZero() && !applied.Less(tx.Position)
	}
	if from == mapping.Left && len(bothWayPairs(ms.m, from)) > 0 {
		// A left-side change's canonical key is its key hint.
		var keys []string
		for _, tx := range txs {
			for _, c := range tx.Changes {
				keys = append(keys, keyHintOf(ms.m, from, c))
			}
		}
		if err := e.prefetchShadows(ctx, ms, keys); err != nil {
			return err
		}
	}
	var writes []connector.Write
	// Fix-ups run after the target writes, in change order. Being
	// compare-and-set, one planned for an earlier change cannot undo a
	// later change of the same record.
	var fixups []connector.Write
	type ref struct {
		tx  *change.Tx
		c   change.Change
		key string
	}
	var refs []ref
	// Shadows changed by these transactions' plans; saved once their
	// target writes have committed.
	shadows := map[string]*shadowState{}
	keysOf := map[string][2]change.Row{}
	var shadowOrder []string
	for t := range txs {
		tx := &txs[t]
		for _, c := range tx.Changes {
			i := len(refs)
			refs = append(refs, ref{tx: tx, c: c})
			keyHint := keyHintOf(ms.m, from, c)
			if ms.parked[keyHint] {
				// Invariant: a change to a key that has a parked catch-up
				// error waits behind it, so the key's changes stay in order.
				e.park(ctx, ms, from, *tx, c, keyHint, problem.New(problem.WaitingBehindError, "waiting behind an earlier failed change to the same key"))
				continue
			}
			at := tx.CommitTime
			if !c.At.IsZero() {
				at = c.At
			}
			p, err := e.plan(ctx, ms, from, at, c, shadows)
			if err != nil {
				if isTransient(err) {
					return err
				}
				e.park(ctx, ms, from, *tx, c, keyHint, err)
				continue
			}
			if p.key != keyHint && ms.parked[p.key] {
				e.park(ctx, ms, from, *tx, c, p.key, problem.New(problem.WaitingBehindError, "waiting behind an earlier failed change to the same key"))
				continue
			}
			if e.log.Enabled(ctx, slog.LevelDebug) {
				e.log.Debug("change planned", "map", ms.name, "direction", e.direction(from), "key", p.key, "op", c.Op.String(),
					"at", at.UnixNano(), "writes", describeWrites(p.target), "fixups", describeWrites(p.fixups), "skipped", p.skipped)
			}
			if p.shadow != nil {
				if _, seen := shadows[p.key]; !seen {
					shadowOrder = append(shadowOrder, p.key)
				}
				shadows[p.key] = p.shadow
				if p.keys[0] != nil {
					keysOf[p.key] = p.keys
				}
			}
			if !done(tx) {
				for _, w := range p.target {
					w.Ref = i
					writes = append(writes, w)
				}
			}
			fixups = append(fixups, p.fixups...)
			refs[i].key = p.key
		}
	}
	chunks := splitWrites(writes)
	if len(txs) > 1 && len(chunks) > 1 {
		// Invariant: a group is never split; its bound makes this
		// unreachable, and a split group could not be skipped exactly
		// on redelivery.
		return fmt.Errorf("a group of %d transactions planned %d writes, above the limit of %d", len(txs), len(writes), connector.MaxBatchRows)
	}
	failedRefs := map[int]bool{}
	skippedRefs := map[int]bool{}
	for k, chunk := range chunks {
		pos := txs[len(txs)-1].Position
		if len(chunks) > 1 {
			// Invariant: a source transaction split into several target
			// transactions records (LSN, part) so a redelivery skips the
			// parts already applied.
			pos.Sub = uint32(k + 1)
		}
		failed, skipped, err := e.applyBatchSkip(ctx, to, connector.Batch{Stream: stream, Position: pos, Writes: chunk})
		if err != nil {
			ms.streamKnown[from] = false // the commit may have happened
			return err
		}
		if ms.streamKnown[from] && ms.streamPos[from].Less(pos) {
			ms.streamPos[from] = pos
		}
		if skipped {
			// Applied before (a redelivery): not counted again.
			for _, w := range chunk {
				skippedRefs[w.Ref] = true
			}
		}
		for _, f := range failed {
			r := refs[f.Ref]
			failedRefs[f.Ref] = true
			e.park(ctx, ms, from, *r.tx, r.c, r.key, problem.Wrap(problem.RowWriteFailed, f.Err, "the %s side rejected the write", e.sideName(to)))
		}
	}
	appliedRefs := map[int]bool{}
	for _, w := range writes {
		if !failedRefs[w.Ref] && !skippedRefs[w.Ref] {
			appliedRefs[w.Ref] = true
		}
	}
	ms.applied[from].Add(int64(len(appliedRefs)))

	// Reconcile every record these transactions touched, once, from the
	// final shadow: both sides end as the conflict rule says.
	var side [2][]connector.Write
	side[from] = append(side[from], fixups...)
	ws, err := e.reconcileAll(ctx, ms, shadowOrder, shadows, keysOf)
	if err != nil {
		return err
	}
	side[0] = append(side[0], ws[0]...)
	side[1] = append(side[1], ws[1]...)
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		for _, chunk := range splitWrites(side[s]) {
			failed, err := e.applyBatch(ctx, s, connector.Batch{Stream: ms.name + ":reconcile", Writes: chunk})
			if err != nil {
				return err
			}
			for _, f := range failed {
				e.log.Warn("reconciliation write failed", "map", ms.name, "side", e.sideName(s), "err", f.Err)
			}
		}
	}
	// Invariant: the conflict shadow is saved only after the target writes
	// and the reconciliation are done; a crash before replays the
	// transaction, which plans the same writes again from the unchanged
	// shadow (the target skips what it already has; reconciliation is
	// compare-and-set on what it reads).
	if err := e.saveShadows(ctx, ms, shadowOrder, shadows); err != nil {
		return err
	}
	if len(writes) > 0 {
		if err := e.store.TouchSync(ctx, ms.name); err != nil {
			e.log.Warn("record last sync failed", "map", ms.name, "err", err)
		}
	}
	return nil
}

// applyBatch applies a batch whole; when the batch fails it is applied
// again with each write isolated, so one bad row never blocks the rest.
func (e *Engine) applyBatch(ctx context.Context, to mapping.Side, b connector.Batch) ([]connector.WriteError, error) {
	failed, _, err := e.applyBatchSkip(ctx, to, b)
	return failed, err
}

// applyBatchSkip is applyBatch that also reports whether the target
// skipped the batch as applied before.
func (e *Engine) applyBatchSkip(ctx context.Context, to mapping.Side, b connector.Batch) ([]connector.WriteError, bool, error) {
	if len(b.Writes) == 0 && b.Position.IsZero() {
		return nil, false, nil
	}
	conn := e.sides[to].conn
	b.Equal = mapping.Equal
	res, err := conn.Apply(ctx, b)
	if err == nil {
		if res.Skipped || len(res.Unmatched) > 0 {
			e.log.Debug("batch applied", "side", e.sideName(to), "stream", b.Stream, "position", b.Position.String(),
				"writes", len(b.Writes), "skipped", res.Skipped, "unmatched", len(res.Unmatched))
		}
		return res.Failed, res.Skipped, nil
	}
	b.Isolate = true
	res, err2 := conn.Apply(ctx, b)
	if err2 != nil {
		return nil, false, transient(fmt.Errorf("apply batch to %s: %w", e.sideName(to), err2))
	}
	return res.Failed, res.Skipped, nil
}

func splitWrites(ws []connector.Write) [][]connector.Write {
	if len(ws) == 0 {
		return [][]connector.Write{nil}
	}
	var out [][]connector.Write
	for len(ws) > connector.MaxBatchRows {
		out = append(out, ws[:connector.MaxBatchRows])
		ws = ws[connector.MaxBatchRows:]
	}
	return append(out, ws)
}

// park records a failed change as a catch-up error of its key.
func (e *Engine) park(ctx context.Context, ms *mapState, from mapping.Side, tx change.Tx, c change.Change, key string, err error) {
	if e.schemaBroke(ctx, ms, err) { // hook (schema.go): a schema change stops the map instead
		return
	}
	code := problem.CodeOf(err)
	if code == "" {
		code = problem.RowWriteFailed
	}
	qc := store.QueuedChange{Side: e.sideName(from), CommitTime: tx.CommitTime, Change: c, Position: tx.Position}
	if perr := e.store.ParkChange(context.WithoutCancel(ctx), ms.name, e.direction(from), key, string(code), err.Error(), qc); perr != nil {
		// The control store is local; if it fails nothing else works either.
		e.log.Error("park change failed", "map", ms.name, "err", perr)
		return
	}
	if code != problem.WaitingBehindError {
		e.log.Warn("change parked as catch-up error", "map", ms.name, "direction", e.direction(from), "key", key, "code", string(code), "err", err)
		e.activity(ctx, ms.name, "engine", "error", fmt.Sprintf("%s %s key %s: %v", code, e.direction(from), keyText(key), err))
	}
	ms.parked[key] = true
}

// keyHintOf returns the canonical key of a change as far as it can be
// known without I/O: exact for changes from the left side; for changes from
// the right it is the right-side key, which plan replaces by the left one.
func keyHintOf(m *mapping.Map, from mapping.Side, c change.Change) string {
	row := c.New
	if c.Op == change.Delete || row == nil {
		row = c.Old
	}
	vals, err := m.KeyOf(from, row)
	if err != nil {
		return "?"
	}
	if from == mapping.Left {
		return keyJSON(vals)
	}
	return "right:" + keyJSON(vals)
}

// plan turns a source change into target writes, applying the map, the
// lookups and the conflict rule.
func (e *Engine) plan(ctx context.Context, ms *mapState, from mapping.Side, at time.Time, c change.Change, shadows map[string]*shadowState) (planned, error) {
	m := ms.m
	to := from.Other()
	src := c.New
	if c.Op == change.Delete {
		src = c.Old
	}
	if src == nil {
		return planned{}, problem.New(problem.KeyMissing, "the change carries no row image")
	}
	if c.Op != change.Delete {
		ok, err := m.Match(from, src)
		if err != nil {
			return planned{}, problem.Wrap(problem.TransformFailed, err, "filter failed")
		}
		if !ok {
			return planned{skipped: true}, nil
		}
	}
	values, err := e.translate(ctx, ms, from, src, false)
	if err != nil {
		return planned{}, err
	}
	tkey, err := keyRow(m, to, values)
	if err != nil {
		return planned{}, err
	}
	key, err := e.canonicalKey(m, from, src, values)
	if err != nil {
		return planned{}, err
	}
	p := planned{key: key}
	skey, err := keyRow(m, from, src)
	if err != nil {
		return planned{}, err
	}

	// A change of integration key is a change of identity: the old record
	// is deleted on the target and the new one upserted, in the same
	// target transaction.
	if c.Op == change.Update && c.Old != nil {
		if oldKey, err := m.KeyOf(from, c.Old); err == nil {
			newKey, _ := m.KeyOf(from, c.New)
			if keyJSON(oldKey) != keyJSON(newKey) {
				oldVals, err := e.translate(ctx, ms, from, c.Old, false)
				if err != nil {
					return planned{}, err
				}
				oldT, err := keyRow(m, to, oldVals)
				if err != nil {
					return planned{}, err
				}
				p.target = append(p.target, connector.Write{Table: m.Table(to), Key: oldT, Op: connector.Delete})
				c = change.Change{Table: c.Table, Op: change.Insert, New: c.New}
			}
		}
	}

	both := bothWayPairs(m, from)
	if len(both) == 0 {
		// A one-way map has no conflicts: the source always wins.
		p.target = append(p.target, plainWrite(m, to, c.Op, tkey, values, c.Unchanged, m.Pairs(from)))
		return p, nil
	}
	sh := shadows[key]
	if sh == nil {
		if sh, err = e.loadShadow(ctx, ms, key); err != nil {
			return planned{}, err
		}
	}
	p.shadow = sh
	rule := conflictRule{at: at.UnixNano(), from: from, master: ms.master}
	if c.Op == change.Delete {
		return e.planDelete(ctx, ms, from, rule, sh, p, tkey, skey)
	}

	// Insert or update.
	p.keys = [2]change.Row{}
	p.keys[from], p.keys[to] = skey, tkey
	if sh.Row != nil && sh.Row.Deleted && !rule.wins(sh.Row) {
		// The record was deleted on the other side after this change; the
		// reconciliation removes it here too.
		p.skipped = true
		return p, nil
	}
	resurrect := c.Op == change.Insert || (sh.Row != nil && sh.Row.Deleted)
	known := sh.Row
	if sh.Row == nil || rule.wins(sh.Row) {
		sh.Row = &stamp{At: rule.at, Side: int(from)}
	}
	changed := changedPairs(m, from, c, resurrect)
	keep := map[string]bool{}
	for _, pr := range m.Pairs(from) {
		if !both[pr.Index] {
			keep[pr.Target] = true // one-way columns always flow
			continue
		}
		if !changed[pr.Index] || !rule.wins(sh.Cols[pr.Index]) {
			continue // unchanged here, or a newer change on the other side won
		}
		keep[pr.Target] = true
		win := &stamp{At: rule.at, Side: int(from), Vals: change.Row{}}
		if v, ok := src[pr.Source]; ok {
			win.Vals[sideKey(from)] = v
		}
		if v, ok := values[pr.Target]; ok {
			win.Vals[sideKey(to)] = v
		}
		sh.Cols[pr.Index] = win
	}
	vals := change.Row{}
	for col, v := range values {
		if keep[col] {
			vals[col] = v
		}
	}
	for col, v := range tkey {
		vals[col] = v
	}
	if len(vals) > len(tkey) || resurrect || known == nil {
		full := values.Clone()
		for col, v := range tkey {
			full[col] = v
		}
		switch {
		case c.Op == change.Insert && known == nil:
			// A new record: create it, or (inserted on both sides at
			// once) update every column, which an insert changes anyway.
			p.target = append(p.target, connector.Write{Table: m.Table(to), Key: tkey, Op: connector.Upsert, Values: full})
		case resurrect || known == nil:
			// The record may be missing on the target (deleted there, or
			// never synced live): create it whole if so, then update.
			p.target = append(p.target,
				connector.Write{Table: m.Table(to), Key: tkey, Op: connector.InsertOnly, Values: full},
				connector.Write{Table: m.Table(to), Key: tkey, Op: connector.UpdateOnly, Values: vals})
		default:
			// A record known to exist is only updated, never re-created:
			// a delete on the target not yet processed is decided by the
			// rule, not undone by this update.
			p.target = append(p.target, connector.Write{Table: m.Table(to), Key: tkey, Op: connector.UpdateOnly, Values: vals})
		}
		if fix, err := e.derivedAfterWrite(ctx, ms, from, to, tkey, skey, vals); err != nil {
			return planned{}, err
		} else if fix != nil {
			p.fixups = append(p.fixups, *fix)
		}
	}
	if len(p.target) == 0 {
		p.skipped = true
	}
	return p, nil
}

// planDelete applies the conflict rule to a delete.
func (e *Engine) planDelete(ctx context.Context, ms *mapState, from mapping.Side, rule conflictRule, sh *shadowState, p planned, tkey, skey change.Row) (planned, error) {
	to := from.Other()
	p.keys = [2]change.Row{}
	p.keys[from], p.keys[to] = skey, tkey
	if !rule.wins(sh.Row) {
		// A newer write on the other side keeps the record alive; the
		// reconciliation puts it back here.
		p.skipped = true
		return p, nil
	}
	sh.Row = &stamp{At: rule.at, Side: int(from), Deleted: true}
	p.target = append(p.target, connector.Write{Table: ms.m.Table(to), Key: tkey, Op: connector.Delete})
	return p, nil
}

// reconcile makes both sides of a record match the conflict rule's
// verdict, after the writes of a transaction committed: the record exists
// or not as its latest write says, and every column the rule has decided
// holds the winning value on both sides. It reads both rows and writes
// only what differs, compare-and-set against what it read. A target write
// may have replaced a newer user change that was not captured yet; that
// change is captured later, wins, and its own reconciliation restores it.
// Because the verdict is a maximum over all writes, the reconciliation
// after the last processed change leaves both sides equal.
func (e *Engine) reconcile(ctx context.Context, ms *mapState, sh *shadowState, keys [2]change.Row, rows [2]change.Row) ([2][]connector.Write, error) {
	var out [2][]connector.Write
	if sh == nil || sh.Row == nil || keys[0] == nil || keys[1] == nil {
		return out, nil
	}
	m := ms.m
	if sh.Row.Deleted {
		for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
			if rows[s] != nil {
				out[s] = append(out[s], connector.Write{Table: m.Table(s), Key: keys[s], Op: connector.Delete, Expect: rows[s]})
			}
		}
		return out, nil
	}
	cols := pairColumns(m)
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		other := s.Other()
		if rows[s] == nil {
			if rows[other] == nil || !m.Flows(other) {
				continue
			}
			vals, err := e.translate(ctx, ms, other, rows[other], false)
			if err != nil {
				return out, err
			}
			for idx, st := range sh.Cols {
				if v, ok := st.Vals[sideKey(s)]; ok && cols[idx][s] != "" {
					vals[cols[idx][s]] = v
				}
			}
			for k, v := range keys[s] {
				vals[k] = v
			}
			out[s] = append(out[s], connector.Write{Table: m.Table(s), Key: keys[s], Op: connector.InsertOnly, Values: vals})
			continue
		}
		fix, expect := change.Row{}, change.Row{}
		for idx, st := range sh.Cols {
			col := cols[idx][s]
			v, ok := st.Vals[sideKey(s)]
			if col == "" || !ok {
				continue
			}
			if cur, present := rows[s][col]; present && !mapping.Equal(cur, v) {
				fix[col], expect[col] = v, cur
			}
		}
		if len(fix) > 0 {
			// Invariant: reconciliation is compare-and-set on the row just
			// read, so a change committed since is left for its own turn.
			out[s] = append(out[s], connector.Write{Table: m.Table(s), Key: keys[s], Op: connector.UpdateOnly, Values: fix, Expect: expect})
		}
	}
	return out, nil
}

// reconcileAll reconciles the records with the given keys, reading the
// rows of each side in one round trip where the connector can.
func (e *Engine) reconcileAll(ctx context.Context, ms *mapState, order []string, shadows map[string]*shadowState, keysOf map[string][2]change.Row) ([2][]connector.Write, error) {
	var out [2][]connector.Write
	var todo []string
	for _, k := range order {
		sh, keys := shadows[k], keysOf[k]
		if sh != nil && sh.Row != nil && keys[0] != nil && keys[1] != nil {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return out, nil
	}
	// The two sides are read at the same time.
	var rows [2][]change.Row
	var errs [2]error
	var wg sync.WaitGroup
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		keys := make([]change.Row, len(todo))
		for i, k := range todo {
			keys[i] = keysOf[k][s]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[s], errs[s] = e.readRows(ctx, s, ms.m.Table(s), keys)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	for i, k := range todo {
		ws, err := e.reconcile(ctx, ms, shadows[k], keysOf[k], [2]change.Row{rows[0][i], rows[1][i]})
		if err != nil {
			return out, err
		}
		out[0] = append(out[0], ws[0]...)
		out[1] = append(out[1], ws[1]...)
	}
	return out, nil
}

// pairColumns maps each pair index to its column on each side.
func pairColumns(m *mapping.Map) map[int][2]string {
	out := map[int][2]string{}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		if !m.Flows(s) {
			continue
		}
		for _, p := range m.Pairs(s) {
			c := out[p.Index]
			c[s], c[s.Other()] = p.Source, p.Target
			out[p.Index] = c
		}
	}
	return out
}

// derivedAfterWrite returns the source-side write of the one-way columns
// that the target derives, computed on the target row as it will be after
// the write of vals; nil when the map has none.
func (e *Engine) derivedAfterWrite(ctx context.Context, ms *mapState, from, to mapping.Side, tkey, skey, vals change.Row) (*connector.Write, error) {
	if len(backOnlyPairs(ms.m, from)) == 0 {
		return nil, nil
	}
	post, err := e.readRow(ctx, to, ms.m.Table(to), tkey)
	if err != nil {
		return nil, err
	}
	if post == nil {
		post = change.Row{}
	}
	for k, v := range vals {
		post[k] = v
	}
	back := e.derivedBack(ctx, ms, from, post)
	if len(back) == 0 {
		return nil, nil
	}
	return &connector.Write{Table: ms.m.Table(from), Key: skey, Op: connector.UpdateOnly, Values: back}, nil
}

func describeWrites(ws []connector.Write) string {
	var b []byte
	for i, w := range ws {
		if i > 0 {
			b = append(b, ';')
		}
		b = fmt.Appendf(b, "%s:%d cols", w.Op, len(w.Values))
		if len(w.Expect) > 0 {
			b = append(b, " (conditional)"...)
		}
		if len(ws) < 8 {
			b = append(b, " {"...)
			for _, k := range sortedStrings(mapKeys(w.Values)) {
				b = fmt.Appendf(b, "%s=%.12v ", k, w.Values[k])
			}
			for _, k := range sortedStrings(mapKeys(w.Expect)) {
				b = fmt.Appendf(b, "expect %s=%.12v ", k, w.Expect[k])
			}
			b = append(b, '}')
		}
	}
	return string(b)
}

func mapKeys(r change.Row) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	return out
}

// plainWrite builds the target write of a change without conflict rules.
func plainWrite(m *mapping.Map, to mapping.Side, op change.Op, key change.Row, values change.Row, unchanged []string, pairs []mapping.Pair) connector.Write {
	if op == change.Delete {
		return connector.Write{Table: m.Table(to), Key: key, Op: connector.Delete}
	}
	vals := values.Clone()
	for _, pr := range pairs {
		for _, u := range unchanged {
			if pr.Source == u {
				delete(vals, pr.Target)
			}
		}
	}
	for k, v := range key {
		vals[k] = v
	}
	return connector.Write{Table: m.Table(to), Key: key, Op: connector.Upsert, Values: vals}
}

// bothWayPairs returns the indexes of pairs that flow both ways: only they
// can conflict.
func bothWayPairs(m *mapping.Map, from mapping.Side) map[int]bool {
	return pairSetsOf(m).bothWay[from]
}

func computeBothWayPairs(m *mapping.Map, from mapping.Side) map[int]bool {
	if !m.Flows(from.Other()) {
		return nil
	}
	back := map[int]bool{}
	for _, p := range m.Pairs(from.Other()) {
		back[p.Index] = true
	}
	out := map[int]bool{}
	for _, p := range m.Pairs(from) {
		if back[p.Index] {
			out[p.Index] = true
		}
	}
	return out
}

// bothWayTargets returns the target-side columns (on from.Other()) of the
// pairs that flow both ways.
func bothWayTargets(m *mapping.Map, from mapping.Side) map[string]bool {
	return pairSetsOf(m).bothTargets[from]
}

func computeBothWayTargets(m *mapping.Map, from mapping.Side) map[string]bool {
	both := computeBothWayPairs(m, from)
	out := map[string]bool{}
	for _, p := range m.Pairs(from) {
		if both[p.Index] {
			out[p.Target] = true
		}
	}
	return out
}

// derivedBack computes the columns that flow one way only, from the target
// back to the source (for example an expression over the target row), from
// the target row as it is after a write (post). It returns source-side
// columns and values; a failure to compute them is logged, never fatal,
// because they are derived data.
func (e *Engine) derivedBack(ctx context.Context, ms *mapState, from mapping.Side, post change.Row) change.Row {
	m := ms.m
	back := backOnlyPairs(m, from)
	if len(back) == 0 || post == nil {
		return nil
	}
	vals, _, err := e.translateDeferred(ctx, m, from.Other(), post, false, 0)
	if err != nil {
		e.log.Debug("derived columns not computed", "map", ms.name, "err", err)
		return nil
	}
	out := change.Row{}
	for _, p := range back {
		if v, ok := vals[p.Target]; ok {
			out[p.Target] = v
		}
	}
	return out
}

// pairSets are a map's pair sets by direction, computed once per compiled
// map (maps do not change once compiled) instead of once per row.
type pairSets struct {
	bothWay     [2]map[int]bool
	bothTargets [2]map[string]bool
	backOnly    [2][]mapping.Pair
}

var pairSetCache sync.Map // *mapping.Map → *pairSets

func pairSetsOf(m *mapping.Map) *pairSets {
	if v, ok := pairSetCache.Load(m); ok {
		return v.(*pairSets)
	}
	ps := &pairSets{}
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		ps.bothWay[s] = computeBothWayPairs(m, s)
		ps.bothTargets[s] = computeBothWayTargets(m, s)
		ps.backOnly[s] = computeBackOnlyPairs(m, s)
	}
	v, _ := pairSetCache.LoadOrStore(m, ps)
	return v.(*pairSets)
}

// backOnlyPairs returns the pairs that flow only from the other side to
// from: values the other side derives for this one.
func backOnlyPairs(m *mapping.Map, from mapping.Side) []mapping.Pair {
	return pairSetsOf(m).backOnly[from]
}

func computeBackOnlyPairs(m *mapping.Map, from mapping.Side) []mapping.Pair {
	to := from.Other()
	if !m.Flows(to) {
		return nil
	}
	fwd := map[int]bool{}
	if m.Flows(from) {
		for _, p := range m.Pairs(from) {
			fwd[p.Index] = true
		}
	}
	var back []mapping.Pair
	for _, p := range m.Pairs(to) {
		if !fwd[p.Index] {
			back = append(back, p)
		}
	}
	return back
}

// changedPairs returns the pairs whose source columns changed. Without a
// complete old image every column counts as changed (row-level rule).
func changedPairs(m *mapping.Map, from mapping.Side, c change.Change, all bool) map[int]bool {
	out := map[int]bool{}
	for _, p := range m.Pairs(from) {
		if p.Source == "" {
			continue
		}
		skip := false
		for _, u := range c.Unchanged {
			if u == p.Source {
				skip = true
			}
		}
		if skip {
			continue
		}
		if all || c.Op == change.Insert || !c.OldComplete {
			out[p.Index] = true
			continue
		}
		if !mapping.Equal(c.Old[p.Source], c.New[p.Source]) {
			out[p.Index] = true
		}
	}
	return out
}

// translate maps a source row to the other side and resolves its lookups.
// With deferSelf, a self-referencing lookup that finds no row yields NULL
// (the initial sync's second pass fills it in).
func (e *Engine) translate(ctx context.Context, ms *mapState, from mapping.Side, row change.Row, deferSelf bool) (change.Row, error) {
	vals, _, err := e.translateDeferred(ctx, ms.m, from, row, deferSelf, 0)
	return vals, err
}

var errNotFound = errors.New("not found")

func (e *Engine) translateDeferred(ctx context.Context, m *mapping.Map, from mapping.Side, row change.Row, deferSelf bool, depth int) (change.Row, bool, error) {
	tr, err := m.Translate(from, row)
	if err != nil {
		return nil, false, withCode(problem.TransformFailed, err)
	}
	vals := tr.Values
	if vals == nil {
		vals = change.Row{}
	}
	deferred := false
	for _, pl := range tr.Lookups {
		spec := m.Lookup(from, pl.Lookup)
		v, err := e.lookupValue(ctx, spec, from, pl.Value, depth)
		if errors.Is(err, errNotFound) {
			if spec.SelfReference && deferSelf {
				vals[pl.Target] = nil
				deferred = true
				continue
			}
			return nil, false, problem.New(problem.LookupUnresolved, "lookup %s: %s value %v has no matching row in %s on %s; sync that map first (run it with --with-related)",
				spec.Map, spec.SourceColumn, pl.Value, spec.TargetTable, e.sideName(from.Other()))
		}
		if err != nil {
			return nil, false, err
		}
		vals[pl.Target] = v
	}
	return vals, deferred, nil
}

// lookupValue maps a referencing value from side `from` to the other side
// through the related map's integration key.
func (e *Engine) lookupValue(ctx context.Context, spec mapping.LookupSpec, from mapping.Side, v any, depth int) (any, error) {
	if v == nil {
		return nil, nil
	}
	if depth > 4 {
		return nil, problem.New(problem.LookupUnresolved, "lookup %s nests too deeply", spec.Map)
	}
	rs, ok := e.maps[spec.Map]
	if !ok || rs.m == nil {
		return nil, problem.New(problem.LookupUncovered, "lookup map %s is not available", spec.Map)
	}
	rel := rs.m
	to := from.Other()
	var srcRow change.Row
	if spec.SourceRefIsKey && len(rel.KeyColumns(from)) == 1 {
		srcRow = change.Row{spec.SourceRef: v}
	} else {
		rows, err := e.sides[from].conn.Scan(ctx, connector.ScanRequest{Table: spec.SourceTable, Equal: change.Row{spec.SourceRef: v}, OrderBy: rel.KeyColumns(from), Limit: 1})
		if err != nil {
			return nil, transient(fmt.Errorf("lookup %s on %s: %w", spec.Map, e.sideName(from), err))
		}
		if len(rows) == 0 {
			return nil, errNotFound
		}
		srcRow = rows[0]
	}
	vals, _, err := e.translateDeferred(ctx, rel, from, srcRow, false, depth+1)
	if err != nil {
		return nil, err
	}
	tkey, err := keyRow(rel, to, vals)
	if err != nil {
		return nil, err
	}
	if spec.TargetRefIsKey {
		if tv, ok := tkey[spec.TargetRef]; ok {
			return tv, nil
		}
	}
	rows, err := e.sides[to].conn.Scan(ctx, connector.ScanRequest{Table: spec.TargetTable, Equal: tkey, OrderBy: rel.KeyColumns(to), Limit: 1})
	if err != nil {
		return nil, transient(fmt.Errorf("lookup %s on %s: %w", spec.Map, e.sideName(to), err))
	}
	if len(rows) == 0 {
		return nil, errNotFound
	}
	return rows[0][spec.TargetRef], nil
}

// keyRow extracts the integration key columns of side s from a row.
func keyRow(m *mapping.Map, s mapping.Side, row change.Row) (change.Row, error) {
	cols := m.KeyColumns(s)
	out := make(change.Row, len(cols))
	for _, c := range cols {
		v, ok := row[c]
		if !ok || v == nil {
			return nil, problem.New(problem.KeyMissing, "integration key column %s.%s is empty; every key column needs a value", m.Table(s), c)
		}
		out[c] = v
	}
	return out, nil
}

// canonicalKey is the identity of a record across both sides: its
// left-side integration key values.
func (e *Engine) canonicalKey(m *mapping.Map, from mapping.Side, src, translated change.Row) (string, error) {
	row := src
	if from == mapping.Right {
		row = translated
	}
	vals, err := m.KeyOf(mapping.Left, row)
	if err != nil {
		return "", err
	}
	return keyJSON(vals), nil
}

func (e *Engine) readRow(ctx context.Context, s mapping.Side, table string, key change.Row) (change.Row, error) {
	cols := make([]string, 0, len(key))
	for k := range key {
		cols = append(cols, k)
	}
	rows, err := e.sides[s].conn.Scan(ctx, connector.ScanRequest{Table: table, Equal: key, OrderBy: sortedStrings(cols), Limit: 1})
	if err != nil {
		return nil, transient(fmt.Errorf("read %s on %s: %w", table, e.sideName(s), err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// transientError marks a failure that is not the row's fault (the target
// cannot be reached): the caller retries instead of parking the row.
type transientError struct{ err error }

func (t transientError) Error() string { return t.err.Error() }
func (t transientError) Unwrap() error { return t.err }

func transient(err error) error { return transientError{err} }

func isTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

func withCode(code problem.Code, err error) error {
	if problem.CodeOf(err) != "" {
		return err
	}
	return problem.Wrap(code, err, "transform failed")
}

func encodeKey(vals []any) (string, error) {
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

// keyText renders a canonical key for people: (usmf, US-001).
func keyText(key string) string {
	vals, err := decodeKey(key)
	if err != nil {
		return key
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		if t, ok := v.(time.Time); ok {
			parts[i] = t.Format(time.RFC3339Nano)
			continue
		}
		parts[i] = fmt.Sprint(v)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func decodeKey(s string) ([]any, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(s), &parts); err != nil {
		return nil, fmt.Errorf("decode key %s: %w", s, err)
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		v, err := change.DecodeValue(p)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

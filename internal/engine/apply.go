package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/plan"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/resolve"
	"github.com/dualwrite/dualwrite/internal/store"
	"github.com/dualwrite/dualwrite/internal/wire"
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
		// Invariant: a change that can be neither applied nor parked fails
		// its whole group, which is retried without acknowledging the
		// source: it is never dropped (applyGroup returns parkErr).
		if ms.parkErr == nil {
			ms.parkErr = fmt.Errorf("park a change of map %s key %s: %w", ms.name, keyText(key), perr)
		}
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

// translatedChange is a source change mapped to the target side, its
// references resolved.
type translatedChange struct {
	values    change.Row // target values, lookups included
	oldValues change.Row // the old row's, when the change moves the key
	key       string     // canonical key
	// unsettled are target columns whose reference is set later in the
	// same target transaction (a cycle): their value here is not final.
	unsettled map[string]bool
}

// plan turns a source change, already translated (tc), into target
// writes, applying the conflict rule. The caller has checked the filter.
func (e *Engine) plan(ctx context.Context, ms *mapState, from mapping.Side, at time.Time, c change.Change, shadows map[string]*shadowState, tc translatedChange) (planned, error) {
	m := ms.m
	to := from.Other()
	src := c.New
	if c.Op == change.Delete {
		src = c.Old
	}
	values, key := tc.values, tc.key
	tkey, err := keyRow(m, to, values)
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
			if keyJSON(oldKey) != keyJSON(newKey) && tc.oldValues != nil {
				oldT, err := keyRow(m, to, tc.oldValues)
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
	rule := plan.Rule{At: at.UnixNano(), From: from, Master: ms.master}
	if c.Op == change.Delete {
		return e.planDelete(ctx, ms, from, rule, sh, p, tkey, skey)
	}

	// Insert or update.
	p.keys = [2]change.Row{}
	p.keys[from], p.keys[to] = skey, tkey
	if sh.Row != nil && sh.Row.Deleted && !rule.Wins(sh.Row) {
		// The record was deleted on the other side after this change; the
		// reconciliation removes it here too.
		p.skipped = true
		return p, nil
	}
	resurrect := c.Op == change.Insert || (sh.Row != nil && sh.Row.Deleted)
	known := sh.Row
	if sh.Row == nil || rule.Wins(sh.Row) {
		sh.Row = &stamp{At: rule.At, Side: int(from)}
	}
	changed := changedPairs(m, from, c, resurrect)
	keep := map[string]bool{}
	for _, pr := range m.Pairs(from) {
		if !both[pr.Index] {
			keep[pr.Target] = true // one-way columns always flow
			continue
		}
		if !changed[pr.Index] {
			continue // unchanged here
		}
		if !rule.Wins(sh.Cols[pr.Index]) {
			e.conflictResolved(ms, from, to) // a newer change on the other side won
			continue
		}
		keep[pr.Target] = true
		win := &stamp{At: rule.At, Side: int(from), Vals: change.Row{}}
		if v, ok := src[pr.Source]; ok {
			win.Vals[sideKey(from)] = v
		}
		if v, ok := values[pr.Target]; ok && !tc.unsettled[pr.Target] {
			if _, isRef := v.(connector.Ref); !isRef {
				win.Vals[sideKey(to)] = v
			}
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
func (e *Engine) planDelete(ctx context.Context, ms *mapState, from mapping.Side, rule plan.Rule, sh *shadowState, p planned, tkey, skey change.Row) (planned, error) {
	to := from.Other()
	p.keys = [2]change.Row{}
	p.keys[from], p.keys[to] = skey, tkey
	if !rule.Wins(sh.Row) {
		e.conflictResolved(ms, from, from.Other())
		// A newer write on the other side keeps the record alive; the
		// reconciliation puts it back here.
		p.skipped = true
		return p, nil
	}
	sh.Row = &stamp{At: rule.At, Side: int(from), Deleted: true}
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
			vals, err := e.translateRow(ctx, ms.m, other, rows[other], false)
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
// Each write's Ref is the index in the returned list of its record's key.
func (e *Engine) reconcileAll(ctx context.Context, ms *mapState, order []string, shadows map[string]*shadowState, keysOf map[string][2]change.Row) ([2][]connector.Write, []string, error) {
	var out [2][]connector.Write
	var todo []string
	for _, k := range order {
		sh, keys := shadows[k], keysOf[k]
		if sh != nil && sh.Row != nil && keys[0] != nil && keys[1] != nil {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return out, nil, nil
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
			return out, nil, err
		}
	}
	for i, k := range todo {
		ws, err := e.reconcile(ctx, ms, shadows[k], keysOf[k], [2]change.Row{rows[0][i], rows[1][i]})
		if err != nil {
			return out, nil, err
		}
		for s := range ws {
			for _, w := range ws[s] {
				w.Ref = i
				out[s] = append(out[s], w)
			}
		}
	}
	return out, todo, nil
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
	vals, err := e.translateRow(ctx, m, from.Other(), post, false)
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

func encodeKey(vals []any) (string, error) { return resolve.KeyOf(vals) }

// keyText renders a canonical key for people: usmf / US-001.
func keyText(key string) string { return wire.KeyText(key) }

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

// conflictResolved reports a key changed on both sides that the conflict
// rule settled for side winner.
func (e *Engine) conflictResolved(ms *mapState, from, winner mapping.Side) {
	if e.obs != nil {
		e.obs.ConflictResolved(ms.name, e.direction(from), e.sideName(winner))
	}
}

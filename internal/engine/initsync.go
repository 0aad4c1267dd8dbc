package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/apply"
	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/store"
)

// The initial sync copies pre-existing rows both ways. Each direction is a
// pass that reads the source in integration-key order (company column
// first), in chunks, and for every row:
//   - creates it on the other side when its key is missing there;
//   - leaves it alone when both sides hold the same values;
//   - otherwise (a conflict) writes the master's values on the other side
//     and records the resolved conflict.
// The second pass only creates rows missing on its target: rows present on
// both sides were reconciled by the first. Progress (the last key of the
// last committed chunk) is saved after each chunk, so a crash or a rerun
// continues where it stopped. Failed rows are recorded and the pass goes
// on. Self-referencing lookups that point at rows not yet created are
// written as NULL and filled in by a last pass.

const maxLoggedConflicts = 50

func passName(from mapping.Side) string { return from.String() }

func (e *Engine) initialSync(ctx context.Context, ms *mapState) error {
	m := ms.m
	// total counts the rows of the sides that flow. empty[s]: side s held
	// no rows when this run began, so every row it holds after the first
	// pass was created by that pass from a row of the other side, and a
	// second pass over it would find nothing to do. (Rows applications
	// insert meanwhile are captured and queued.) A resumed run counts
	// again and finds the rows the first pass wrote.
	var total int64
	var empty [2]bool
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		n, err := e.sides[s].conn.Count(ctx, m.Table(s), nil)
		if err != nil {
			return fmt.Errorf("count %s on %s: %w", m.Table(s), e.sideName(s), err)
		}
		empty[s] = n == 0
		if m.Flows(s) {
			total += n
		}
	}
	// Sides whose capture just began at an exported snapshot are read
	// inside it: then no change is both read here and replayed from the
	// queue. Elsewhere (a resumed run, a side already captured for other
	// maps) rows are read as they are now; a change also in the queue is
	// replayed over the same values, which converges to the same state.
	var snaps [2]connector.SnapshotReader
	for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
		so, ok := e.sides[s].conn.(connector.SnapshotOpener)
		if !ok {
			continue
		}
		r, err := so.OpenSnapshot(ctx)
		if err != nil {
			e.log.Warn("cannot read inside the capture's snapshot; reading current rows", "map", ms.name, "side", e.sideName(s), "err", err)
			continue
		}
		if r != nil {
			snaps[s] = r
			defer r.Close()
		}
	}
	ms.initTotal.Store(total)
	e.activity(ctx, ms.name, "engine", "run", fmt.Sprintf("initial sync started: %d source rows", total))
	conflicts := 0
	first := true
	for _, from := range []mapping.Side{mapping.Left, mapping.Right} {
		if !m.Flows(from) {
			continue
		}
		if !first && empty[from] {
			if err := e.store.SetInitProgress(ctx, ms.name, passName(from), "", true); err != nil {
				return err
			}
			continue
		}
		if !first {
			// The second pass also reads the rows the first one created.
			n, err := e.sides[from].conn.Count(ctx, m.Table(from), nil)
			if err != nil {
				return fmt.Errorf("count %s on %s: %w", m.Table(from), e.sideName(from), err)
			}
			ms.initTotal.Store(ms.initDone.Load() + n)
		}
		n, err := e.initPass(ctx, ms, from, !first, first && empty[from.Other()], snaps[from])
		conflicts += n
		if err != nil {
			return err
		}
		first = false
	}
	for _, from := range []mapping.Side{mapping.Left, mapping.Right} {
		if m.Flows(from) {
			if err := e.resolveDeferred(ctx, ms, from); err != nil {
				return err
			}
		}
	}
	initErrs, _, _ := e.store.CountErrors(ctx, ms.name)
	e.activity(ctx, ms.name, "engine", "run", fmt.Sprintf("initial sync finished: %d rows, %d conflicts resolved by master %s, %d errors",
		ms.initDone.Load(), conflicts, e.sideName(ms.master), initErrs))
	if err := e.store.TouchSync(ctx, ms.name); err != nil {
		return err
	}
	return e.store.SetInitCounts(ctx, ms.name, ms.initDone.Load(), ms.initTotal.Load())
}

// scanOrder is the key order of a side with the company column first.
func scanOrder(m *mapping.Map, s mapping.Side) []string {
	keys := m.KeyColumns(s)
	c := m.CompanyColumn(s)
	if c == "" {
		return keys
	}
	out := []string{c}
	for _, k := range keys {
		if k != c {
			out = append(out, k)
		}
	}
	return out
}

// initPass runs one direction. onlyMissing makes it create missing rows
// and skip rows present on both sides.
//
// targetEmpty says the target side held no rows when the run began: then
// no target row needs reading (every key is missing but for rows
// applications insert meanwhile, which are captured and queued), and rows
// are created with InsertOnly, so such a row is left to its own change.
func (e *Engine) initPass(ctx context.Context, ms *mapState, from mapping.Side, onlyMissing, targetEmpty bool, snap connector.SnapshotReader) (int, error) {
	m := ms.m
	pass := passName(from)
	afterJSON, done, err := e.store.InitProgress(ctx, ms.name, pass)
	if err != nil {
		return 0, err
	}
	if done {
		return 0, nil
	}
	var after []any
	if afterJSON != "" {
		if after, err = decodeKey(afterJSON); err != nil {
			return 0, err
		}
	}
	order := scanOrder(m, from)
	chunk := e.cfg.Engine.ChunkSize
	if chunk <= 0 || chunk > connector.MaxBatchRows {
		chunk = connector.MaxBatchRows
	}
	// Two stages overlap: one reads and plans the next chunk (scan,
	// translate, read the target rows, decide the writes) while the other
	// writes the current one and saves its progress. Chunks hold distinct
	// source keys, so a plan never depends on the chunk before it.
	type planned struct {
		plan  chunkPlan
		after []any
		err   error
	}
	planCtx, cancelPlan := context.WithCancel(ctx)
	plans := make(chan planned, 1)
	defer func() {
		// The reader stops before the pass returns: it may be using the
		// snapshot's session, which the caller closes next.
		cancelPlan()
		for range plans {
		}
	}()
	conflicts := 0
	go func() {
		defer close(plans)
		after := after
		for {
			req := connector.ScanRequest{Table: m.Table(from), OrderBy: order, After: after, Limit: chunk}
			var rows []change.Row
			var err error
			if snap != nil {
				rows, err = snap.Scan(planCtx, req)
			} else {
				rows, err = e.sides[from].conn.Scan(planCtx, req)
			}
			if err != nil {
				select {
				case plans <- planned{err: fmt.Errorf("read %s on %s: %w", m.Table(from), e.sideName(from), err)}:
				case <-planCtx.Done():
				}
				return
			}
			if len(rows) == 0 {
				return
			}
			last := rows[len(rows)-1]
			after = make([]any, len(order))
			for i, c := range order {
				after[i] = last[c]
			}
			plan, err := e.planChunk(planCtx, ms, from, rows, onlyMissing, targetEmpty, &conflicts)
			select {
			case plans <- planned{plan: plan, after: after, err: err}:
			case <-planCtx.Done():
				return
			}
			if err != nil || len(rows) < chunk {
				return
			}
		}
	}()
	for p := range plans {
		if p.err != nil {
			return 0, p.err
		}
		if err := e.applyPlan(ctx, ms, from, p.plan); err != nil {
			return 0, err
		}
		after = p.after
		ms.initErrMu.Lock()
		failed := ms.initErrFail
		ms.initErrFail = nil
		ms.initErrMu.Unlock()
		if failed != nil {
			return 0, failed
		}
		// Invariant: progress is saved only after the chunk's writes have
		// committed, so a resumed pass never skips an unwritten row.
		if err := e.store.SetInitProgress(ctx, ms.name, pass, keyJSON(after), false); err != nil {
			return 0, err
		}
		ms.initDone.Add(int64(p.plan.rows))
		if err := e.store.SetInitCounts(ctx, ms.name, ms.initDone.Load(), ms.initTotal.Load()); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return conflicts, e.store.SetInitProgress(ctx, ms.name, pass, keyJSON(after), true)
}

type initRow struct {
	kv  []any // source key values; keyJSON(kv) names the row in errors
	src change.Row
	// key, vals, tkey and have pair the record once the chunk is written:
	// its canonical key, translated values, target key and target row
	// before the writes (nil when missing).
	key        string
	vals, tkey change.Row
	have       change.Row
}

// initPrep is a source row of a chunk, translated, waiting for its target
// row.
type initPrep struct {
	kv         []any // source key values, rendered (keyJSON) only when needed
	row        change.Row
	vals       change.Row // translated to the target's columns
	tkey, skey change.Row
	deferred   bool
	key        string // canonical key
}

// chunkPlan is what a chunk of source rows needs written.
type chunkPlan struct {
	rows          int
	toTarget      []connector.Write
	toSource      []connector.Write
	refs, srcRefs []initRow
}

// initChunk reconciles one chunk of source rows.
func (e *Engine) initChunk(ctx context.Context, ms *mapState, from mapping.Side, rows []change.Row, onlyMissing bool, conflicts *int) (int, error) {
	plan, err := e.planChunk(ctx, ms, from, rows, onlyMissing, false, conflicts)
	if err != nil {
		return 0, err
	}
	return plan.rows, e.applyPlan(ctx, ms, from, plan)
}

// applyPlan writes a chunk's plan: the target side first, then the writes
// back on the source side.
func (e *Engine) applyPlan(ctx context.Context, ms *mapState, from mapping.Side, p chunkPlan) error {
	failed, returned, err := e.initApply(ctx, ms, from, from.Other(), p.toTarget, p.refs)
	if err != nil {
		return err
	}
	if _, _, err := e.initApply(ctx, ms, from, from, p.toSource, p.srcRefs); err != nil {
		return err
	}
	return e.pairChunk(ctx, ms, from, p, failed, returned)
}

// initApply writes a chunk's writes on one side. It returns the refs of
// the rows that failed (recorded as initial sync errors) and the columns
// the writes returned, by index in ws.
func (e *Engine) initApply(ctx context.Context, ms *mapState, from, on mapping.Side, ws []connector.Write, refs []initRow) (map[int]bool, map[int]change.Row, error) {
	failed := map[int]bool{}
	returned := map[int]change.Row{}
	if len(ws) == 0 {
		return failed, returned, nil
	}
	offset := 0
	for _, chunk := range apply.Split(ws) {
		res, err := e.sides[on].conn.Apply(ctx, connector.Batch{Stream: ms.name + ":init", Writes: chunk, Isolate: true})
		if err != nil {
			return nil, nil, fmt.Errorf("initial sync write to %s: %w", e.sideName(on), err)
		}
		for _, f := range res.Failed {
			failed[f.Ref] = true
			e.initError(ctx, ms, from, keyJSON(refs[f.Ref].kv), problem.Wrap(problem.RowWriteFailed, f.Err, "the %s side rejected the write", e.sideName(on)))
		}
		for i, row := range res.Returned {
			returned[offset+i] = row
		}
		offset += len(chunk)
	}
	return failed, returned, nil
}

// reconcileInit decides what one source row needs, given its target row
// (nil when missing): writes on the target, and writes back on the source
// when the target is the master of a conflict or when one-way columns flow
// back from the target (values the target derives, such as an expression
// over the row).
func (e *Engine) reconcileInit(ctx context.Context, ms *mapState, from mapping.Side, p initPrep, have change.Row, onlyMissing, targetEmpty bool) (target, source []connector.Write, conflict bool, err error) {
	m := ms.m
	to := from.Other()
	row, vals, tkey, skey, deferred := p.row, p.vals, p.tkey, p.skey, p.deferred
	var post change.Row
	back := change.Row{}
	if have == nil {
		op := connector.Upsert
		if targetEmpty {
			op = connector.InsertOnly
		}
		target = append(target, connector.Write{Table: m.Table(to), Key: tkey, Op: op, Values: vals})
		post = vals // read only below
	} else {
		if onlyMissing {
			return nil, nil, false, nil
		}
		want := vals.Clone()
		for _, pr := range m.Pairs(from) {
			if pr.Lookup && deferred && want[pr.Target] == nil {
				delete(want, pr.Target) // filled in by the last pass
			}
		}
		both := bothWayTargets(m, from)
		fix := change.Row{}
		var bothDiff []string
		for _, c := range mapping.Diff(want, have) {
			if both[c] {
				bothDiff = append(bothDiff, c)
			} else {
				fix[c] = want[c] // one-way columns always flow
			}
		}
		if len(bothDiff) > 0 {
			conflict = true
			if ms.master == from {
				for _, c := range bothDiff {
					fix[c] = want[c]
				}
			} else {
				// The target is the master: its values go back to the source.
				theirs, err := e.translateRow(ctx, m, to, have, false)
				if err != nil {
					return nil, nil, false, err
				}
				for col := range bothWayTargets(m, to) {
					if v, ok := theirs[col]; ok && !mapping.Equal(row[col], v) {
						back[col] = v
					}
				}
				// One-way columns are computed from the source row as it
				// will be once the master's values are back on it.
				if len(back) > 0 {
					rowPost := row.Clone()
					for k, v := range back {
						rowPost[k] = v
					}
					valsPost, err := e.translateRow(ctx, m, from, rowPost, true)
					if err != nil {
						return nil, nil, false, err
					}
					fix = change.Row{}
					for c, v := range valsPost {
						if !both[c] && !mapping.Equal(v, have[c]) {
							fix[c] = v
						}
					}
				}
			}
		}
		if len(fix) > 0 {
			target = append(target, connector.Write{Table: m.Table(to), Key: tkey, Op: connector.UpdateOnly, Values: fix})
		}
		post = have.Clone()
		for k, v := range fix {
			post[k] = v
		}
	}
	for col, v := range e.derivedBack(ctx, ms, from, post) {
		if !mapping.Equal(row[col], v) {
			back[col] = v
		}
	}
	if len(back) > 0 {
		source = append(source, connector.Write{Table: m.Table(from), Key: skey, Op: connector.UpdateOnly, Values: back})
	}
	return target, source, conflict, nil
}

func (e *Engine) initError(ctx context.Context, ms *mapState, from mapping.Side, key string, err error) {
	code := problem.CodeOf(err)
	if code == "" {
		code = problem.RowWriteFailed
	}
	ms.initErrs.Add(1)
	if serr := e.store.AddInitError(ctx, store.RowError{Map: ms.name, Direction: e.direction(from), Key: key, Code: string(code), Message: err.Error()}); serr != nil {
		// Invariant: a row whose error cannot be recorded is not passed
		// over: the chunk's progress is not saved (initPass), so the
		// chunk is read again.
		ms.initErrMu.Lock()
		if ms.initErrFail == nil {
			ms.initErrFail = fmt.Errorf("record the initial sync error of map %s key %s: %w", ms.name, keyText(key), serr)
		}
		ms.initErrMu.Unlock()
	}
}

// Rerun retries the rows that failed in the map's initial sync, and only
// them. A row that now succeeds loses its error.
func (e *Engine) Rerun(ctx context.Context, name, actor string) (RetryResult, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return RetryResult{}, err
	}
	if ms.m == nil {
		return RetryResult{}, problem.New(problem.MapInvalid, "map %s has validation errors", name)
	}
	errs, err := e.store.InitErrors(ctx, name)
	if err != nil {
		return RetryResult{}, err
	}
	var res RetryResult
	for _, re := range errs {
		from := mapping.Left
		if s, ok := e.sideIndex(directionSource(re.Direction)); ok {
			from = s
		}
		res.Retried++
		kv, err := decodeKey(re.Key)
		if err != nil {
			res.Failed++
			continue
		}
		eq := change.Row{}
		for i, c := range ms.m.KeyColumns(from) {
			if i < len(kv) {
				eq[c] = kv[i]
			}
		}
		row, err := e.readRow(ctx, from, ms.m.Table(from), eq)
		if err != nil {
			return res, err
		}
		if row == nil { // the row is gone: nothing left to sync
			if err := e.store.DeleteInitError(ctx, re.ID); err != nil {
				return res, err
			}
			res.Succeeded++
			continue
		}
		// The old error goes; a row that fails again records a new one.
		if err := e.store.DeleteInitError(ctx, re.ID); err != nil {
			return res, err
		}
		before := ms.initErrs.Load()
		var conflicts int
		if _, err := e.initChunk(ctx, ms, from, []change.Row{row}, false, &conflicts); err != nil {
			return res, err
		}
		if ms.initErrs.Load() > before {
			res.Failed++
			continue
		}
		res.Succeeded++
	}
	// Errors recorded by the retried rows replace the old ones.
	e.activity(ctx, name, actorOr(actor), "run", fmt.Sprintf("initial sync rerun: %d retried, %d succeeded, %d failed", res.Retried, res.Succeeded, res.Failed))
	return res, nil
}

func directionSource(dir string) string {
	src, _, _ := strings.Cut(dir, "->")
	return src
}

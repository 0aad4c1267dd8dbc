package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/store"
)

const drainBatch = 200

// drain replays a map's durable queue in order, every intermediate value,
// then makes the map Running. The hand-over is atomic: the last empty read
// and the status change happen under the map's route lock, so no change
// is queued after the final read.
func (e *Engine) drain(ctx context.Context, ms *mapState) error {
	states, err := e.store.MapStates(ctx)
	if err != nil {
		return err
	}
	epoch := ms.att.epoch.Load() // hook (stall.go): an engine stop ends this drain
	cursor := states[ms.name].QueueCursor
	if st, err := e.queue.Stats(ctx, ms.name); err == nil && st.LastSeq < cursor {
		cursor = 0 // the queue was recreated; its sequences restarted
	}
	replayed := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := e.queue.Read(ctx, ms.name, cursor, drainBatch)
		if err != nil {
			return fmt.Errorf("read queue of map %s: %w", ms.name, err)
		}
		if len(entries) == 0 {
			ms.routeMu.Lock()
			if ms.att.epoch.Load() != epoch || ms.att.halted.Load() { // hook (stall.go)
				ms.routeMu.Unlock()
				return nil
			}
			entries, err = e.queue.Read(ctx, ms.name, cursor, drainBatch)
			if err == nil && len(entries) == 0 {
				err = e.setStatus(ctx, ms, Running, "engine")
				ms.routeMu.Unlock()
				if err == nil && replayed > 0 {
					e.activity(ctx, ms.name, "engine", "run", fmt.Sprintf("catch-up replayed %d queued transactions", replayed))
				}
				return err
			}
			ms.routeMu.Unlock()
			if err != nil {
				return fmt.Errorf("read queue of map %s: %w", ms.name, err)
			}
		}
		for _, en := range entries {
			from, ok := e.sideIndex(en.Direction)
			if !ok {
				// Invariant: nothing queued is dropped: a transaction from a
				// side this link no longer has (renamed in the config) is
				// kept as catch-up errors, to discard or to retry once the
				// side has its name back.
				if err := e.parkUnknownSide(ctx, ms, en.Direction, en.Tx); err != nil {
					return err
				}
				cursor = en.Seq
				if err := e.store.SetQueueCursor(ctx, ms.name, cursor); err != nil {
					return err
				}
				continue
			}
			backoff := 100 * time.Millisecond
			for {
				err := e.applyTxs(ctx, ms, from, []change.Tx{en.Tx})
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				e.log.Error("replay queued change failed; retrying", "map", ms.name, "seq", en.Seq, "err", err)
				e.sleep(ctx, &backoff)
			}
			if ms.att.epoch.Load() != epoch { // hook (stall.go): the engine stopped the map
				return nil
			}
			cursor = en.Seq
			replayed++
			// Invariant: the cursor moves only after the entry was applied
			// (or parked); a crash replays it, and the target's applied
			// position makes that a no-op.
			if err := e.store.SetQueueCursor(ctx, ms.name, cursor); err != nil {
				return err
			}
		}
		if err := e.queue.Trim(ctx, ms.name, cursor); err != nil {
			e.log.Warn("trim queue failed", "map", ms.name, "err", err)
		}
	}
}

// watchQueues warns well before retention would drop queued changes.
func (e *Engine) watchQueues(ctx context.Context) {
	every := 10 * time.Second
	if w := e.cfg.Engine.QueueWarnAt.D(); w > 0 && w/4 < every {
		every = max(w/4, 100*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.watchRetainedLog(ctx)
		warnAt := e.cfg.Engine.QueueWarnAt.D()
		if warnAt <= 0 {
			continue
		}
		for _, n := range e.order {
			ms := e.maps[n]
			st, err := e.queue.Stats(ctx, n)
			if err != nil || st.Depth == 0 || st.Oldest.IsZero() {
				continue
			}
			age := e.now().Sub(st.Oldest)
			if age >= warnAt && e.now().Sub(ms.lastWarning) > time.Hour {
				ms.lastWarning = e.now()
				msg := fmt.Sprintf("%s queued changes are %s old; retention %s drops them at that age: resume the map", problem.QueueRetention, age.Round(time.Second), e.cfg.Engine.QueueRetention.D())
				e.log.Warn("queue nearing retention", "map", n, "age", age.String(), "depth", st.Depth)
				e.activity(ctx, n, "engine", "warning", msg)
			}
		}
	}
}

// CatchUpErrors lists a map's parked catch-up errors.
func (e *Engine) CatchUpErrors(ctx context.Context, name string) ([]RowError, error) {
	if _, err := e.lookupMap(name); err != nil {
		return nil, err
	}
	errs, err := e.store.CatchUpErrors(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]RowError, 0, len(errs))
	for _, r := range errs {
		out = append(out, RowError{ID: r.ID, Map: r.Map, Direction: r.Direction, Key: r.Key, Code: r.Code, Message: r.Message, Time: r.At, Changes: len(r.Changes)})
	}
	return out, nil
}

// Retry applies the parked changes of catch-up errors again, in order. A
// change that fails again stays parked with the changes behind it.
func (e *Engine) Retry(ctx context.Context, name string, ids []int64, actor string) (RetryResult, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return RetryResult{}, err
	}
	if ms.m == nil {
		return RetryResult{}, problem.New(problem.MapInvalid, "map %s has validation errors", name)
	}
	errs, err := e.store.CatchUpErrors(ctx, name)
	if err != nil {
		return RetryResult{}, err
	}
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var res RetryResult
	for _, ce := range errs {
		if len(ids) > 0 && !want[ce.ID] {
			continue
		}
		res.Retried++
		ok, err := e.retryOne(ctx, ms, ce)
		if err != nil {
			return res, err
		}
		if ok {
			res.Succeeded++
		} else {
			res.Failed++
		}
	}
	e.activity(ctx, name, actorOr(actor), "run", fmt.Sprintf("catch-up retry: %d retried, %d succeeded, %d failed", res.Retried, res.Succeeded, res.Failed))
	return res, nil
}

func (e *Engine) retryOne(ctx context.Context, ms *mapState, ce store.RowError) (bool, error) {
	ms.routeMu.Lock()
	defer ms.routeMu.Unlock()
	// Unpark the key, replay its changes in order; the first failure parks
	// it (and the rest behind it) again.
	if err := e.store.DeleteCatchUpError(ctx, ce.ID); err != nil {
		return false, err
	}
	if err := e.store.WaitsClear(ctx, ms.name, ce.Key); err != nil {
		return false, err
	}
	ms.applyMu.Lock()
	delete(ms.parked, ce.Key)
	ms.applyMu.Unlock()
	for _, qc := range ce.Changes {
		from, ok := e.sideIndex(qc.Side)
		if !ok {
			// Still no such side: the change stays parked.
			if err := e.parkUnknownSide(ctx, ms, qc.Side, change.Tx{CommitTime: qc.CommitTime, Position: qc.Position, Changes: []change.Change{qc.Change}}); err != nil {
				return false, err
			}
			ms.applyMu.Lock()
			ms.parked[ce.Key] = true
			ms.applyMu.Unlock()
			continue
		}
		tx := change.Tx{CommitTime: qc.CommitTime, Changes: []change.Change{qc.Change}}
		if err := e.applyGroup(ctx, from, []change.Tx{tx}, []*mapState{ms}, ms.name+":"+e.direction(from), nil); err != nil {
			return false, err
		}
	}
	ms.applyMu.Lock()
	failed := ms.parked[ce.Key]
	ms.applyMu.Unlock()
	return !failed, nil
}

// Discard drops catch-up errors with their parked changes.
func (e *Engine) Discard(ctx context.Context, name string, ids []int64, actor string) (int, error) {
	ms, err := e.lookupMap(name)
	if err != nil {
		return 0, err
	}
	errs, err := e.store.CatchUpErrors(ctx, name)
	if err != nil {
		return 0, err
	}
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	for _, ce := range errs {
		if len(ids) > 0 && !want[ce.ID] {
			continue
		}
		if err := e.store.DeleteCatchUpError(ctx, ce.ID); err != nil {
			return n, err
		}
		if err := e.store.WaitsClear(ctx, ms.name, ce.Key); err != nil {
			return n, err
		}
		ms.applyMu.Lock()
		delete(ms.parked, ce.Key)
		ms.applyMu.Unlock()
		n++
	}
	e.activity(ctx, name, actorOr(actor), "run", fmt.Sprintf("discarded %d catch-up errors", n))
	return n, nil
}

// watchRetainedLog warns when a side's source keeps more log for the
// engine than engine.retained_log_warn (a replication slot pinning WAL).
func (e *Engine) watchRetainedLog(ctx context.Context) {
	limit := e.cfg.Engine.RetainedLogWarn
	if limit <= 0 {
		return
	}
	for _, s := range e.sides {
		lr, ok := s.conn.(connector.LagReporter)
		if tables, _ := e.activeTables(s.idx); !ok || len(tables) == 0 {
			continue
		}
		l, err := lr.Lag(ctx)
		if err != nil || l.RetainedLog <= limit {
			continue
		}
		if e.now().Sub(e.retainedWarned[s.idx]) < time.Hour {
			continue
		}
		e.retainedWarned[s.idx] = e.now()
		e.log.Warn("source retains much log for capture", "side", s.name, "retained_bytes", l.RetainedLog, "limit", limit)
		for _, n := range e.order {
			ms := e.maps[n]
			if ms.m != nil && e.statusOf(ms) != NotRunning && ms.m.Flows(s.idx) {
				e.activity(ctx, n, "engine", "warning", fmt.Sprintf("%s side %s retains %d bytes of log for capture (limit %d): check that the map is not stuck or paused too long", problem.QueueRetention, s.name, l.RetainedLog, limit))
			}
		}
	}
}

// parkUnknownSide keeps a transaction from a side the link does not have
// as catch-up errors, one per change.
func (e *Engine) parkUnknownSide(ctx context.Context, ms *mapState, side string, tx change.Tx) error {
	for _, c := range tx.Changes {
		key := "side:" + side
		if ms.m != nil {
			for _, s := range []mapping.Side{mapping.Left, mapping.Right} {
				if ms.m.Table(s) == c.Table {
					key = keyHintOf(ms.m, s, c)
				}
			}
		}
		qc := store.QueuedChange{Side: side, CommitTime: tx.CommitTime, Change: c, Position: tx.Position}
		msg := fmt.Sprintf("queued change from side %q, which this link no longer has; give the side its name back and retry, or discard it", side)
		if err := e.store.ParkChange(context.WithoutCancel(ctx), ms.name, side+"->?", key, string(problem.ConfigInvalid), msg, qc); err != nil {
			return err
		}
		e.activity(ctx, ms.name, "engine", "error", string(problem.ConfigInvalid)+" "+msg)
	}
	return nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/checkpoint"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/queue"
	"github.com/dualwrite/dualwrite/internal/route"
)

// sideLoop is the capture loop of one side.
type sideLoop struct {
	idx  mapping.Side
	name string
	conn connector.Connector
	// reconf asks the loop to reopen capture with the current table set;
	// the loop answers on the given channel once capture is open.
	reconf chan chan error
	// open tables of the current capture, owned by the loop goroutine.
	tables []string
	opened bool
	// check records and acknowledges the side's positions and keeps its
	// true lag (internal/checkpoint).
	check *checkpoint.Side
}

// reconfigure makes side s capture exactly the tables of its active maps,
// and returns once the new capture is open.
func (e *Engine) reconfigure(ctx context.Context, s mapping.Side) error {
	if !e.running.Load() {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case e.sides[s].reconf <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runSide owns side s's capturer: it opens capture for the active tables,
// routes every transaction and acknowledges positions, and reopens capture
// when the table set changes or the connection fails.
func (e *Engine) runSide(ctx context.Context, s *sideLoop) {
	var waiting []chan error
	answer := func(err error) {
		for _, w := range waiting {
			w <- err
		}
		waiting = nil
	}
	defer answer(context.Canceled)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		tables, fullOld := e.activeTables(s.idx)
		if len(tables) == 0 {
			e.streamFlowing(s.idx) // hook (stall.go): no stream, no stall
			if s.opened {
				e.release(ctx, s)
			}
			answer(nil)
			select {
			case <-ctx.Done():
				return
			case w := <-s.reconf:
				waiting = append(waiting, w)
			}
			continue
		}
		from, err := e.store.SidePosition(ctx, s.name)
		if err != nil {
			e.streamStalled(s.idx, err) // hook (stall.go)
			answer(err)
			e.backOff(ctx, s, &backoff, &waiting)
			continue
		}
		e.streamOpening(s.idx) // hook (stall.go): a slow open shows as a stall
		capt, err := s.conn.Capture(ctx, connector.CaptureOptions{Tables: tables, From: from, FullOld: fullOld})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("open capture failed", "side", s.name, "err", err)
			e.streamStalled(s.idx, err) // hook (stall.go)
			answer(fmt.Errorf("open capture on %s: %w", s.name, err))
			e.backOff(ctx, s, &backoff, &waiting)
			continue
		}
		if p, ok := capt.(connector.Positioner); ok && from.IsZero() {
			// Invariant: a source that does not keep our position gets its
			// start recorded before anything is delivered, so a restart
			// resumes there instead of at a later end of log.
			if err := e.store.SetSidePosition(ctx, s.name, p.Position()); err != nil {
				capt.Close()
				answer(err)
				e.backOff(ctx, s, &backoff, &waiting)
				continue
			}
		}
		s.tables, s.opened = tables, true
		backoff = 100 * time.Millisecond
		e.streamOpened(s.idx, capt) // hook (stall.go)
		answer(nil)
		err = e.pump(ctx, s, capt, &waiting)
		capt.Close()
		e.streamClosed(ctx, s.idx, err) // hook (stall.go)
		if err != nil && ctx.Err() == nil {
			e.log.Error("capture failed; reopening", "side", s.name, "err", err)
			e.backOff(ctx, s, &backoff, &waiting)
		}
	}
}

// pump reads transactions until a reconfiguration request (returns nil)
// or a failure (returns the error).
func (e *Engine) pump(ctx context.Context, s *sideLoop, capt connector.Capturer, waiting *[]chan error) error {
	// carry is a transaction taken while forming a group that did not fit
	// in it; it starts the next group.
	var carry *change.Tx
	for {
		var first change.Tx
		if carry != nil {
			first, carry = *carry, nil
		} else {
			nextCtx, cancel := context.WithCancel(ctx)
			type result struct {
				tx  change.Tx
				err error
			}
			done := make(chan result, 1)
			go func() {
				tx, err := capt.Next(nextCtx)
				done <- result{tx, err}
			}()
			var r result
			select {
			case w := <-s.reconf:
				*waiting = append(*waiting, w)
				cancel()
				<-done // Next returns on cancel; an unacked transaction is redelivered
				return nil
			case r = <-done:
				cancel()
			}
			if r.err != nil {
				return r.err
			}
			first = r.tx
		}
		group, next, capErr := e.gather(ctx, capt, first)
		carry = next
		s.check.Captured(group, e.now())
		if ec, ok := capt.(connector.EchoCounter); ok {
			e.echo[s.idx].Store(ec.EchoesSuppressed())
		}
		last := group[len(group)-1].Position
		e.log.Debug("transactions captured", "side", s.name, "position", last.String(), "transactions", len(group))
		if err := e.handleTxs(ctx, s, group); err != nil {
			return err
		}
		// handleTxs returned: every map's share is applied, parked or
		// queued.
		if err := s.check.Commit(ctx, capt, last); err != nil {
			return err
		}
		if capErr != nil {
			return capErr
		}
	}
}

// groupWait is how long gather waits for one more transaction: under
// backlog the next one is already decoded; otherwise the group closes at
// once and a lone transaction pays only this much latency.
const groupWait = 300 * time.Microsecond

// gather forms a group of consecutive transactions starting with first,
// from those capture already has: at most engine.group_transactions
// transactions and maxGroupChanges changes. A transaction that does not
// fit is returned as next. A capture error ends the group and is returned
// after it, so what was taken is handled first.
func (e *Engine) gather(ctx context.Context, capt connector.Capturer, first change.Tx) (group []change.Tx, next *change.Tx, capErr error) {
	group = []change.Tx{first}
	limit := e.cfg.Engine.GroupTransactions
	changes := len(first.Changes)
	for len(group) < limit && changes < maxGroupChanges {
		gctx, cancel := context.WithTimeout(ctx, groupWait)
		tx, err := capt.Next(gctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				capErr = err
			}
			return group, nil, capErr
		}
		if !route.Fits(len(group), changes, len(tx.Changes), limit, maxGroupChanges) {
			return group, &tx, nil
		}
		group = append(group, tx)
		changes += len(tx.Changes)
	}
	return group, nil, nil
}

// handleTxs routes transactions, retrying transient failures until they
// pass or the engine stops: the position is not acknowledged meanwhile.
func (e *Engine) handleTxs(ctx context.Context, s *sideLoop, txs []change.Tx) error {
	backoff := 100 * time.Millisecond
	for {
		err := e.route(ctx, s.idx, txs)
		if err == nil {
			e.streamFlowing(s.idx) // hook (stall.go)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.streamStalled(s.idx, err) // hook (stall.go): the stream waits on this, visibly
		e.log.Error("route transactions failed; retrying", "side", s.name, "position", txs[len(txs)-1].Position.String(), "err", err)
		e.sleep(ctx, &backoff)
	}
}

// route splits consecutive transactions of side from per map: the shares
// of Running maps are applied together, as one target transaction in the
// source's order; the shares of Paused, Initializing and Resuming maps go
// to their durable queues. A row's failure is parked with its key inside
// applyGroup; only failures that are not a row's fault come back, and the
// caller retries the whole group (the target skips what it committed).
func (e *Engine) route(ctx context.Context, from mapping.Side, txs []change.Tx) error {
	var live []*mapState
	var locked []*mapState
	defer func() {
		for _, ms := range locked {
			ms.routeMu.Unlock()
		}
	}()
	for _, n := range e.order {
		ms := e.maps[n]
		if ms.m == nil || !ms.m.Flows(from) {
			continue
		}
		parts := route.Share(txs, ms.m.Table(from))
		if len(parts) == 0 {
			continue
		}
		// routeMu serialises routing with status changes, so that no
		// change slips between a status check and its use.
		ms.routeMu.Lock()
		locked = append(locked, ms)
		switch e.statusOf(ms) {
		case Running:
			switch {
			case ms.att.halted.Load():
				// The engine is stopping this map (stall.go): it takes no
				// more changes.
			case route.TruncateIndex(parts) >= 0:
				// A truncate is handled as the map's on_truncate says
				// (truncate.go), on the map's own stream, apart from the
				// other maps' share of the transaction.
				if err := e.applyTruncating(ctx, ms, from, parts); err != nil {
					if e.schemaBroke(ctx, ms, err) {
						continue
					}
					return fmt.Errorf("map %s: %w", ms.name, err)
				}
			default:
				live = append(live, ms)
			}
		case Paused, Initializing, Resuming:
			for _, tx := range parts {
				seq, err := e.queue.Append(ctx, queue.Entry{Map: ms.name, Direction: e.sideName(from), Tx: tx, EnqueuedAt: e.now()})
				if err != nil {
					return fmt.Errorf("map %s: queue change: %w", ms.name, err)
				}
				e.log.Debug("transaction queued", "map", ms.name, "side", e.sideName(from), "position", tx.Position.String(), "seq", seq)
			}
		}
	}
	for len(live) > 0 {
		err := e.applyGroup(ctx, from, txs, live, e.liveStream(from), &e.live[from])
		if err == nil {
			return nil
		}
		// A map whose tables no longer fit it stops alone (schema.go);
		// the others are applied again without it.
		kept := live[:0]
		for _, ms := range live {
			if !e.schemaBroke(ctx, ms, err) {
				kept = append(kept, ms)
			}
		}
		if len(kept) == len(live) {
			return err
		}
		live = kept
	}
	return nil
}

// liveStream names the applied-position stream of live apply from side
// from: one per direction, as one target transaction carries every map's
// share of a source transaction.
func (e *Engine) liveStream(from mapping.Side) string {
	return "live:" + e.direction(from)
}

// release frees a side's log resources once no map uses it.
func (e *Engine) release(ctx context.Context, s *sideLoop) {
	s.opened = false
	s.tables = nil
	if r, ok := s.conn.(connector.Releaser); ok {
		if err := r.Release(ctx); err != nil {
			e.log.Warn("release capture resources failed", "side", s.name, "err", err)
			return
		}
	}
	if err := e.store.ClearSidePosition(ctx, s.name); err != nil {
		e.log.Warn("clear capture position failed", "side", s.name, "err", err)
	}
}

// backOff waits before the capture loop tries again, taking the
// reconfiguration requests that come meanwhile: a request ends the wait
// (the loop tries at once with the new table set) and is answered by that
// attempt, so a side whose capture keeps failing never leaves a caller
// blocked.
func (e *Engine) backOff(ctx context.Context, s *sideLoop, backoff *time.Duration, waiting *[]chan error) {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		*backoff = min(*backoff*2, 5*time.Second)
	case w := <-s.reconf:
		*waiting = append(*waiting, w)
	}
}

func (e *Engine) sleep(ctx context.Context, backoff *time.Duration) {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	*backoff = min(*backoff*2, 5*time.Second)
}

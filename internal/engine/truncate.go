package engine

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/dualwrite/dualwrite/internal/apply"
	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/route"
)

// TRUNCATE per map (docs/adr/20261204-truncate-per-map.md). Capture
// reports a truncate of a watched table as a change.Truncate in its
// transaction's order. A map's share of the transaction reaches its apply
// like any change (live, or replayed from its queue), and the map's
// on_truncate decides: stop, resync, or propagate. Other maps never see
// it.

// truncatePart is where the final part of a propagated truncate is
// recorded: a stream at (LSN, truncatePart) has it whole.
const truncatePart = math.MaxUint32

// applyTxs applies one map's share of consecutive transactions on its own
// stream (`map:erp->crm`, as its queue replay): the transactions around a
// truncate are applied apart from the other maps'.
// A map the engine is stopping takes no more changes; a truncate is
// handled as the map's on_truncate says.
func (e *Engine) applyTxs(ctx context.Context, ms *mapState, from mapping.Side, txs []change.Tx) error {
	if ms.att.halted.Load() {
		return nil
	}
	if route.TruncateIndex(txs) >= 0 {
		return e.applyTruncating(ctx, ms, from, txs)
	}
	return e.applyGroup(ctx, from, txs, []*mapState{ms}, ms.name+":"+e.direction(from), &ms.replay[from])
}

// applyTruncating applies one map's share of consecutive transactions of
// which some truncate the map's table on side from. The transactions
// before a truncating one are applied first; then the map's on_truncate
// acts; what the truncating transaction changed after its (last) truncate
// follows.
func (e *Engine) applyTruncating(ctx context.Context, ms *mapState, from mapping.Side, txs []change.Tx) error {
	for len(txs) > 0 {
		i := route.TruncateIndex(txs)
		if i < 0 {
			return e.applyGroup(ctx, from, txs, []*mapState{ms}, ms.name+":"+e.direction(from), &ms.replay[from])
		}
		if i > 0 {
			if err := e.applyTxs(ctx, ms, from, txs[:i]); err != nil {
				return err
			}
		}
		tx := txs[i]
		last := 0
		for j, c := range tx.Changes {
			if c.Op == change.Truncate {
				last = j
			}
		}
		rest := tx
		rest.Changes = slices.Clone(tx.Changes[last+1:])
		table := tx.Changes[last].Table
		switch ms.cfg.OnTruncate {
		case config.TruncatePropagate:
			if err := e.propagateTruncate(ctx, ms, from, tx); err != nil {
				return err
			}
			if len(rest.Changes) > 0 {
				if err := e.applyTxs(ctx, ms, from, []change.Tx{rest}); err != nil {
					return err
				}
			}
		case config.TruncateResync:
			e.requestHalt(ms, true, problem.Truncated, "table %s was truncated on %s (transaction %s); on_truncate is resync", table, e.sideName(from), tx.ID)
			return nil
		default:
			e.requestHalt(ms, false, problem.Truncated,
				"table %s was truncated on %s (transaction %s); on_truncate is stop: truncate %s on %s too if that was meant, then run the map again (with initial sync)",
				table, e.sideName(from), tx.ID, ms.m.Table(from.Other()), e.sideName(from.Other()))
			return nil
		}
		txs = txs[i+1:]
	}
	return nil
}

// propagateTruncate deletes every row of the map's table on the other
// side that the map's filter for that side selects (every row when it has
// none). The deletes are applied on a stream of their own at the
// truncating transaction's position, in parts of connector.MaxBatchRows,
// the last recorded as (LSN, truncatePart): a redelivery finds the
// truncate whole and skips it, or finds it partly done and deletes what
// is left.
func (e *Engine) propagateTruncate(ctx context.Context, ms *mapState, from mapping.Side, tx change.Tx) error {
	ms.applyMu.Lock()
	defer ms.applyMu.Unlock()
	to := from.Other()
	conn := e.sides[to].conn
	stream := ms.name + ":" + e.direction(from) + ":truncate"
	applied, err := conn.AppliedPosition(ctx, stream)
	if err != nil {
		return fmt.Errorf("read applied position of %s: %w", stream, err)
	}
	done := tx.Position
	done.Sub = truncatePart
	if !applied.Less(done) {
		return nil // propagated before: a redelivery
	}
	var base uint32
	if applied.LSN == tx.Position.LSN {
		base = applied.Sub // parts of an interrupted propagation
	}
	table := ms.m.Table(to)
	keys := ms.m.KeyColumns(to)
	var deletes []connector.Write
	var after []any
	kept, failedDeletes := 0, 0
	var firstErr error
	for {
		rows, err := conn.Scan(ctx, connector.ScanRequest{Table: table, OrderBy: keys, After: after, Limit: connector.MaxBatchRows})
		if err != nil {
			return fmt.Errorf("read %s on %s to propagate a truncate: %w", table, e.sideName(to), err)
		}
		for _, r := range rows {
			ok, err := ms.m.Match(to, r)
			if err != nil {
				kept++ // the filter cannot say: the row stays
				continue
			}
			if !ok {
				continue
			}
			key := change.Row{}
			for _, k := range keys {
				key[k] = r[k]
			}
			deletes = append(deletes, connector.Write{Table: table, Key: key, Op: connector.Delete})
		}
		if len(rows) < connector.MaxBatchRows {
			break
		}
		lastRow := rows[len(rows)-1]
		after = make([]any, len(keys))
		for i, k := range keys {
			after[i] = lastRow[k]
		}
	}
	parts := apply.Split(deletes)
	for k, part := range parts {
		pos := tx.Position
		pos.Sub = base + uint32(k) + 1
		if k == len(parts)-1 {
			pos.Sub = truncatePart
		}
		// Invariant: the deletes of a propagated truncate and their
		// position commit together; the final part marks it whole.
		res, err := e.applyWrites(ctx, to, connector.Batch{Stream: stream, Position: pos, Writes: part})
		if err != nil {
			return fmt.Errorf("propagate truncate of %s to %s: %w", ms.m.Table(from), e.sideName(to), err)
		}
		failedDeletes += len(res.Failed)
		if len(res.Failed) > 0 && firstErr == nil {
			firstErr = res.Failed[0].Err
		}
	}
	msg := fmt.Sprintf("table %s was truncated on %s; %d rows of %s deleted on %s (on_truncate: propagate)",
		ms.m.Table(from), e.sideName(from), len(deletes)-failedDeletes, table, e.sideName(to))
	if kept > 0 {
		msg += fmt.Sprintf("; %d rows kept: the map's filter could not be evaluated on them", kept)
	}
	if failedDeletes > 0 {
		// No failed write is only logged: the map stops, visibly.
		e.requestHalt(ms, false, problem.Truncated, "table %s was truncated on %s and %d rows of %s on %s could not be deleted (%v); delete them, then run the map again (with initial sync)",
			ms.m.Table(from), e.sideName(from), failedDeletes, table, e.sideName(to), firstErr)
	}
	e.activity(ctx, ms.name, "engine", "truncate", msg)
	e.log.Info("truncate propagated", "map", ms.name, "direction", e.direction(from), "deleted", len(deletes)-failedDeletes, "kept", kept, "position", tx.Position.String())
	return nil
}

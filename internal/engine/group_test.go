package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/config"
)

// backlog is a capturer whose transactions are all already waiting, then
// either none (Next waits for its context) or an error.
type backlog struct {
	txs []change.Tx
	err error
}

func (b *backlog) Next(ctx context.Context) (change.Tx, error) {
	if len(b.txs) > 0 {
		tx := b.txs[0]
		b.txs = b.txs[1:]
		return tx, nil
	}
	if b.err != nil {
		return change.Tx{}, b.err
	}
	<-ctx.Done()
	return change.Tx{}, ctx.Err()
}
func (b *backlog) Ack(context.Context, change.Position) error { return nil }
func (b *backlog) Close() error                               { return nil }

func txOf(lsn uint64, changes int) change.Tx {
	return change.Tx{Position: change.Position{LSN: lsn}, Changes: make([]change.Change, changes)}
}

func lsns(txs []change.Tx) []uint64 {
	var out []uint64
	for _, tx := range txs {
		out = append(out, tx.Position.LSN)
	}
	return out
}

func TestGatherFormsGroupsWithinBounds(t *testing.T) {
	t.Parallel()
	e := &Engine{cfg: &config.Config{}}
	e.cfg.Engine.GroupTransactions = 3
	ctx := context.Background()
	capt := &backlog{txs: []change.Tx{txOf(2, 1), txOf(3, 250), txOf(4, 100), txOf(5, 1), txOf(6, 1), txOf(7, 1), txOf(8, 1)}}

	// The group stops at the change bound; the transaction that does not
	// fit starts the next group.
	g, next, err := e.gather(ctx, capt, txOf(1, 1))
	if err != nil || !equalLSNs(lsns(g), 1, 2, 3) || next != nil {
		// 1+1+250 = 252 changes in 3 transactions: the transaction bound
		// closes it before 4 is taken.
		t.Fatalf("group 1 = %v, next %v, err %v", lsns(g), next, err)
	}
	g, next, err = e.gather(ctx, capt, txOf(40, 201))
	if err != nil || !equalLSNs(lsns(g), 40) || next == nil || next.Position.LSN != 4 {
		t.Fatalf("group 2 = %v, next %v, err %v; want [40] and 4 carried (201+100 > %d)", lsns(g), next, err, maxGroupChanges)
	}
	// The transaction bound.
	g, next, err = e.gather(ctx, capt, *next)
	if err != nil || !equalLSNs(lsns(g), 4, 5, 6) || next != nil {
		t.Fatalf("group 3 = %v, next %v, err %v", lsns(g), next, err)
	}
	// Nothing more waiting: the group closes with what it has.
	g, _, err = e.gather(ctx, capt, *capturedNext(t, capt))
	if err != nil || !equalLSNs(lsns(g), 7, 8) {
		t.Fatalf("group 4 = %v, err %v", lsns(g), err)
	}

	// A capture error ends the group and comes after it.
	boom := errors.New("connection lost")
	capt = &backlog{txs: []change.Tx{txOf(2, 1)}, err: boom}
	g, _, err = e.gather(ctx, capt, txOf(1, 1))
	if !errors.Is(err, boom) || !equalLSNs(lsns(g), 1, 2) {
		t.Fatalf("group = %v, err %v; want [1 2] and the capture error", lsns(g), err)
	}

	// group_transactions 1: every transaction alone.
	e.cfg.Engine.GroupTransactions = 1
	capt = &backlog{txs: []change.Tx{txOf(2, 1)}}
	if g, next, _ := e.gather(ctx, capt, txOf(1, 1)); !equalLSNs(lsns(g), 1) || next != nil || len(capt.txs) != 1 {
		t.Fatalf("strict mode grouped %v", lsns(g))
	}
}

func capturedNext(t *testing.T, capt *backlog) *change.Tx {
	t.Helper()
	tx, err := capt.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &tx
}

func equalLSNs(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// externalURL is the NATS JetStream server of the integration tests.
func externalURL() string {
	if u := os.Getenv("DW_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func randomSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// backend gives each test its own isolated queue: a fresh directory for the
// embedded server, a random stream prefix on the external one (whose
// streams are deleted when the test ends).
type backend struct {
	name    string
	options func(t *testing.T) Options
}

var backends = []backend{
	{
		name: "embedded",
		options: func(t *testing.T) Options {
			return Options{Dir: filepath.Join(t.TempDir(), "queue"), Prefix: "T" + randomSuffix(t)}
		},
	},
	{
		name: "embedded one get per entry",
		options: func(t *testing.T) Options {
			return Options{Dir: filepath.Join(t.TempDir(), "queue"), Prefix: "T" + randomSuffix(t), singleGet: true}
		},
	},
	{
		name: "external",
		options: func(t *testing.T) Options {
			prefix := "T" + randomSuffix(t)
			t.Cleanup(func() { deleteStreams(t, externalURL(), prefix) })
			return Options{URL: externalURL(), Prefix: prefix}
		},
	},
}

func deleteStreams(t *testing.T, url, prefix string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("cleanup: connect to %s: %v", url, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx, jetstream.WithStreamListSubject(allSubjects(prefix)))
	var list []string
	for n := range names.Name() {
		list = append(list, n)
	}
	for _, n := range list {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Errorf("cleanup: delete stream %s: %v", n, err)
		}
	}
}

func open(t *testing.T, o Options) *Queue {
	t.Helper()
	q, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// entry builds an entry whose transaction carries every canonical type, so
// that a round trip through the queue checks the codec too.
func entry(mapName, direction string, lsn uint64) Entry {
	return Entry{
		Map:       mapName,
		Direction: direction,
		Tx: change.Tx{
			ID:         fmt.Sprintf("tx%d", lsn),
			Position:   change.Position{LSN: lsn, Token: "bin.000001"},
			CommitTime: t0.Add(time.Duration(lsn) * time.Second),
			Changes: []change.Change{{
				Table: "account",
				Op:    change.Update,
				Old:   change.Row{"id": int64(lsn)},
				New: change.Row{
					"id": int64(lsn), "name": fmt.Sprintf("acme %d", lsn), "active": true, "score": 1.5,
					"balance": change.Decimal("12.3400"), "blob": []byte{0, 1, 2}, "note": nil,
					"updated": t0.Add(time.Millisecond * time.Duration(lsn)),
				},
			}},
		},
		EnqueuedAt: t0.Add(time.Duration(lsn) * time.Minute),
	}
}

func mustAppend(t *testing.T, q *Queue, e Entry) uint64 {
	t.Helper()
	seq, err := q.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("append %s %s %s: %v", e.Map, e.Direction, e.Tx.Position, err)
	}
	return seq
}

func mustRead(t *testing.T, q *Queue, mapName string, after uint64, max int) []Entry {
	t.Helper()
	got, err := q.Read(context.Background(), mapName, after, max)
	if err != nil {
		t.Fatalf("read %s after %d: %v", mapName, after, err)
	}
	if got == nil {
		t.Fatalf("read %s after %d: nil slice, want empty slice", mapName, after)
	}
	return got
}

func mustStats(t *testing.T, q *Queue, mapName string) Stats {
	t.Helper()
	st, err := q.Stats(context.Background(), mapName)
	if err != nil {
		t.Fatalf("stats %s: %v", mapName, err)
	}
	return st
}

func seqs(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func lsns(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Tx.Position.LSN
	}
	return out
}

func checkEntry(t *testing.T, got Entry, want Entry, seq uint64) {
	t.Helper()
	want.Seq = seq
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entry %d:\n got %+v\nwant %+v", seq, got, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQueue runs the core behaviour against the embedded server and the
// external NATS on loopback.
func TestQueue(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range coreTests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, b.options(t))
				})
			}
		})
	}
}

var coreTests = []struct {
	name string
	run  func(t *testing.T, o Options)
}{
	{"append and read in order", testAppendRead},
	{"read after restart", testRestart},
	{"dedupe of a position", testDedupe},
	{"trim", testTrim},
	{"stats", testStats},
	{"retention", testRetention},
	{"retention change applied on open", testRetentionChange},
	{"purge", testPurge},
	{"concurrent appends to two maps", testConcurrent},
	{"close", testClose},
}

func testAppendRead(t *testing.T, o Options) {
	q := open(t, o)
	var want []Entry
	for i := uint64(1); i <= 10; i++ {
		dir := "erp"
		if i%3 == 0 {
			dir = "crm"
		}
		e := entry("account map", dir, i)
		if seq := mustAppend(t, q, e); seq != i {
			t.Fatalf("append %d: seq %d, want %d", i, seq, i)
		}
		want = append(want, e)
	}
	got := mustRead(t, q, "account map", 0, 100)
	if len(got) != len(want) {
		t.Fatalf("read %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		checkEntry(t, got[i], want[i], uint64(i+1))
	}
	if got := seqs(mustRead(t, q, "account map", 3, 2)); !reflect.DeepEqual(got, []uint64{4, 5}) {
		t.Errorf("read after 3, max 2: seqs %v, want [4 5]", got)
	}
	if got := mustRead(t, q, "account map", 10, 5); len(got) != 0 {
		t.Errorf("read after the last: %d entries, want none", len(got))
	}
	if got := mustRead(t, q, "no such map", 0, 5); len(got) != 0 {
		t.Errorf("read of a map that never queued: %d entries, want none", len(got))
	}
	if _, err := q.Read(context.Background(), "account map", 0, 0); err == nil {
		t.Error("read with max 0: no error")
	}
	if _, err := q.Append(context.Background(), Entry{Map: "m", Direction: "erp"}); err == nil {
		t.Error("append of a transaction without position: no error")
	}
}

func testRestart(t *testing.T, o Options) {
	q := open(t, o)
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, q, entry("m", "erp", i*10))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open(t, o)
	got := mustRead(t, q, "m", 0, 100)
	if want := []uint64{10, 20, 30, 40, 50}; !reflect.DeepEqual(lsns(got), want) {
		t.Fatalf("after restart: LSNs %v, want %v", lsns(got), want)
	}
	checkEntry(t, got[2], entry("m", "erp", 30), 3)
	// A source replaying from its last acknowledged position after the
	// restart: the entries are already queued, whatever their age.
	for _, lsn := range []uint64{30, 40, 50} {
		if seq := mustAppend(t, q, entry("m", "erp", lsn)); seq != 5 {
			t.Errorf("redelivered LSN %d after restart: seq %d, want 5 (the last entry)", lsn, seq)
		}
	}
	if seq := mustAppend(t, q, entry("m", "erp", 60)); seq != 6 {
		t.Errorf("new entry after restart: seq %d, want 6", seq)
	}
	if st := mustStats(t, q, "m"); st.Depth != 6 {
		t.Errorf("depth %d, want 6", st.Depth)
	}
}

func testDedupe(t *testing.T, o Options) {
	q := open(t, o)
	first := mustAppend(t, q, entry("m", "erp", 7))
	again := mustAppend(t, q, entry("m", "erp", 7))
	if again != first {
		t.Errorf("same position appended twice: seqs %d and %d", first, again)
	}
	// The same position from the other side is a different transaction.
	other := mustAppend(t, q, entry("m", "crm", 7))
	if other == first {
		t.Errorf("same position from another direction deduplicated to seq %d", other)
	}
	mustAppend(t, q, entry("m", "erp", 8))
	mustAppend(t, q, entry("m", "erp", 9))
	// An older position is a redelivery too.
	if seq := mustAppend(t, q, entry("m", "erp", 8)); seq != 4 {
		t.Errorf("redelivered LSN 8: seq %d, want 4 (the last erp entry)", seq)
	}
	// Sub orders split parts of one transaction: a later part is new.
	e := entry("m", "erp", 9)
	e.Tx.Position.Sub = 1
	if seq := mustAppend(t, q, e); seq != 5 {
		t.Errorf("part 1 of LSN 9: seq %d, want 5", seq)
	}
	if got := lsns(mustRead(t, q, "m", 0, 100)); !reflect.DeepEqual(got, []uint64{7, 7, 8, 9, 9}) {
		t.Errorf("LSNs %v, want [7 7 8 9 9]", got)
	}
}

func testTrim(t *testing.T, o Options) {
	q := open(t, o)
	ctx := context.Background()
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, q, entry("m", "erp", i))
	}
	if err := q.Trim(ctx, "m", 3); err != nil {
		t.Fatal(err)
	}
	if got := seqs(mustRead(t, q, "m", 0, 100)); !reflect.DeepEqual(got, []uint64{4, 5}) {
		t.Fatalf("after trim to 3: seqs %v, want [4 5]", got)
	}
	if st := mustStats(t, q, "m"); st.Depth != 2 || st.FirstSeq != 4 || st.LastSeq != 5 {
		t.Errorf("after trim to 3: stats %+v, want depth 2, seqs 4..5", st)
	}
	if err := q.Trim(ctx, "m", 2); err != nil {
		t.Errorf("trim below the first entry: %v", err)
	}
	// A cursor past the end only removes what exists: later appends are kept.
	if err := q.Trim(ctx, "m", 100); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, q, "m"); st.Depth != 0 || !st.Oldest.IsZero() {
		t.Errorf("after trim to 100: stats %+v, want empty", st)
	}
	if seq := mustAppend(t, q, entry("m", "erp", 6)); seq != 6 {
		t.Errorf("append after trimming everything: seq %d, want 6", seq)
	}
	if got := seqs(mustRead(t, q, "m", 5, 10)); !reflect.DeepEqual(got, []uint64{6}) {
		t.Errorf("read after 5: seqs %v, want [6]", got)
	}
	if err := q.Trim(ctx, "never queued", 10); err != nil {
		t.Errorf("trim of a map that never queued: %v", err)
	}
}

func testStats(t *testing.T, o Options) {
	q := open(t, o)
	if st := mustStats(t, q, "m"); st != (Stats{}) {
		t.Errorf("stats of a map that never queued: %+v, want zero", st)
	}
	for i := uint64(1); i <= 3; i++ {
		mustAppend(t, q, entry("m", "erp", i))
	}
	st := mustStats(t, q, "m")
	if st.Depth != 3 || st.FirstSeq != 1 || st.LastSeq != 3 {
		t.Errorf("stats %+v, want depth 3, seqs 1..3", st)
	}
	body, err := encodeEntry(entry("m", "erp", 1))
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes < 3*int64(len(body)) {
		t.Errorf("bytes %d, want at least 3 × %d", st.Bytes, len(body))
	}
	if want := entry("m", "erp", 1).EnqueuedAt; !st.Oldest.Equal(want) {
		t.Errorf("oldest %s, want %s (EnqueuedAt of the first entry)", st.Oldest, want)
	}
	if err := q.Trim(context.Background(), "m", 1); err != nil {
		t.Fatal(err)
	}
	if want := entry("m", "erp", 2).EnqueuedAt; !mustStats(t, q, "m").Oldest.Equal(want) {
		t.Errorf("after trim: oldest %s, want %s", mustStats(t, q, "m").Oldest, want)
	}
	// EnqueuedAt defaults to the current time.
	e := entry("n", "erp", 1)
	e.EnqueuedAt = time.Time{}
	before := time.Now()
	mustAppend(t, q, e)
	if old := mustStats(t, q, "n").Oldest; old.Before(before.Add(-time.Second)) || old.After(time.Now().Add(time.Second)) {
		t.Errorf("default EnqueuedAt %s, want about %s", old, before)
	}
}

func testRetention(t *testing.T, o Options) {
	o.Retention = time.Second
	q := open(t, o)
	mustAppend(t, q, entry("m", "erp", 1))
	mustAppend(t, q, entry("m", "erp", 2))
	if st := mustStats(t, q, "m"); st.Depth != 2 {
		t.Fatalf("depth %d right after append, want 2", st.Depth)
	}
	waitFor(t, "entries older than 1s to expire", func() bool { return mustStats(t, q, "m").Depth == 0 })
	if got := mustRead(t, q, "m", 0, 10); len(got) != 0 {
		t.Errorf("read after expiry: %d entries", len(got))
	}
}

func testRetentionChange(t *testing.T, o Options) {
	q := open(t, o)
	mustAppend(t, q, entry("m", "erp", 1))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	o.Retention = time.Second
	q = open(t, o)
	waitFor(t, "the new 1s retention to expire the entry", func() bool { return mustStats(t, q, "m").Depth == 0 })
}

func testPurge(t *testing.T, o Options) {
	q := open(t, o)
	ctx := context.Background()
	for i := uint64(1); i <= 3; i++ {
		mustAppend(t, q, entry("m", "erp", i))
	}
	mustAppend(t, q, entry("other", "erp", 1))
	if err := q.Purge(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, q, "m"); st.Depth != 0 || st.Bytes != 0 || !st.Oldest.IsZero() {
		t.Errorf("after purge: %+v, want empty", st)
	}
	if got := mustRead(t, q, "m", 0, 10); len(got) != 0 {
		t.Errorf("read after purge: %d entries", len(got))
	}
	if st := mustStats(t, q, "other"); st.Depth != 1 {
		t.Errorf("purge of m changed map other: depth %d, want 1", st.Depth)
	}
	// After a purge the same positions are queued again (the map was reset,
	// not replayed), within the dedupe window too; sequences keep growing.
	if seq := mustAppend(t, q, entry("m", "erp", 2)); seq != 4 {
		t.Errorf("append after purge: seq %d, want 4", seq)
	}
	if seq := mustAppend(t, q, entry("m", "erp", 3)); seq != 5 {
		t.Errorf("append after purge: seq %d, want 5", seq)
	}
	if got := lsns(mustRead(t, q, "m", 0, 10)); !reflect.DeepEqual(got, []uint64{2, 3}) {
		t.Errorf("after purge and append: LSNs %v, want [2 3]", got)
	}
	if err := q.Purge(ctx, "never queued"); err != nil {
		t.Errorf("purge of a map that never queued: %v", err)
	}
}

func testConcurrent(t *testing.T, o Options) {
	q := open(t, o)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, m := range []string{"a", "b"} {
		for _, dir := range []string{"erp", "crm"} {
			wg.Go(func() {
				for i := uint64(1); i <= n; i++ {
					if _, err := q.Append(context.Background(), entry(m, dir, i)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b"} {
		got := mustRead(t, q, m, 0, 10*n)
		if len(got) != 2*n {
			t.Fatalf("map %s: %d entries, want %d", m, len(got), 2*n)
		}
		next := map[string]uint64{"erp": 1, "crm": 1}
		for i, e := range got {
			if e.Seq != uint64(i+1) || e.Map != m {
				t.Fatalf("map %s entry %d: seq %d map %s", m, i, e.Seq, e.Map)
			}
			if e.Tx.Position.LSN != next[e.Direction] {
				t.Fatalf("map %s %s: LSN %d, want %d (order lost)", m, e.Direction, e.Tx.Position.LSN, next[e.Direction])
			}
			next[e.Direction]++
		}
	}
}

func testClose(t *testing.T, o Options) {
	q := open(t, o)
	mustAppend(t, q, entry("m", "erp", 1))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	ctx := context.Background()
	if _, err := q.Append(ctx, entry("m", "erp", 2)); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := q.Read(ctx, "m", 0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}
	if _, err := q.Stats(ctx, "m"); !errors.Is(err, ErrClosed) {
		t.Errorf("stats after close: %v, want ErrClosed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		code problem.Code
		says string
	}{
		{"no directory", Options{}, problem.ConfigInvalid, "engine.data_dir"},
		{"bad prefix", Options{Dir: t.TempDir(), Prefix: "a.b"}, problem.ConfigInvalid, "prefix"},
		{"underscore in prefix", Options{Dir: t.TempDir(), Prefix: "a_b"}, problem.ConfigInvalid, "prefix"},
		{"negative retention", Options{Dir: t.TempDir(), Retention: -time.Second}, problem.ConfigInvalid, "queue_retention"},
		{"directory is a file", Options{Dir: filepath.Join(file, "q")}, problem.QueueUnavailable, "queue directory"},
		{"unreachable server", Options{URL: "nats://127.0.0.1:1"}, problem.QueueUnavailable, "engine.queue_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := Open(context.Background(), tc.o)
			if err == nil {
				q.Close()
				t.Fatal("open succeeded")
			}
			if got := problem.CodeOf(err); got != tc.code {
				t.Errorf("code %q, want %q (%v)", got, tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not mention %q", err, tc.says)
			}
		})
	}
}

// TestEntryTooLarge uses the external server, whose max_payload (1 MiB by
// default) is smaller than the embedded one's.
func TestEntryTooLarge(t *testing.T) {
	t.Parallel()
	o := backends[2].options(t)
	q := open(t, o)
	e := entry("m", "erp", 1)
	e.Tx.Changes[0].New["blob"] = make([]byte, int(q.nc.MaxPayload()))
	_, err := q.Append(context.Background(), e)
	if got := problem.CodeOf(err); got != problem.QueueEntryTooLarge {
		t.Fatalf("append of a huge entry: %v, want code %s", err, problem.QueueEntryTooLarge)
	}
	if st := mustStats(t, q, "m"); st.Depth != 0 {
		t.Errorf("depth %d after a refused append", st.Depth)
	}
}

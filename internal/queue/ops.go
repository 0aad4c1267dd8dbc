package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// entryJSON is the stored form of an entry (the message body). The
// sequence is the stream's and is not stored. Part of the on-disk
// contract: see testdata/entry.golden.json.
type entryJSON struct {
	Map        string    `json:"map"`
	Direction  string    `json:"direction"`
	EnqueuedAt time.Time `json:"enqueued_at"`
	Tx         change.Tx `json:"tx"`
}

func encodeEntry(e Entry) ([]byte, error) {
	return json.Marshal(entryJSON{Map: e.Map, Direction: e.Direction, EnqueuedAt: e.EnqueuedAt.UTC(), Tx: e.Tx})
}

func decodeEntry(seq uint64, data []byte) (Entry, error) {
	var j entryJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Entry{}, fmt.Errorf("decode queue entry %d: %w", seq, err)
	}
	return Entry{Seq: seq, Map: j.Map, Direction: j.Direction, Tx: j.Tx, EnqueuedAt: j.EnqueuedAt}, nil
}

// decoder turns a stored message into an Entry: decodeEntry in full, or
// decodeStamp for what Stats needs.
type decoder func(seq uint64, data []byte) (Entry, error)

// decodeStamp reads only the head of an entry (map, direction, enqueue
// time), token by token, and stops before the transaction: Stats reads
// the oldest entry for its age, and a queued transaction of 10,000 rows
// is megabytes of JSON not worth decoding for that. An entry whose head
// is not in the stored order is decoded in full.
func decodeStamp(seq uint64, data []byte) (Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	e := Entry{Seq: seq}
	seen := 0
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return decodeEntry(seq, data)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return decodeEntry(seq, data)
		}
		var dst any
		switch t {
		case "map":
			dst = &e.Map
		case "direction":
			dst = &e.Direction
		case "enqueued_at":
			dst = &e.EnqueuedAt
		default:
			return decodeEntry(seq, data)
		}
		if err := dec.Decode(dst); err != nil {
			return decodeEntry(seq, data)
		}
		if seen++; seen == 3 {
			return e, nil
		}
	}
	return decodeEntry(seq, data)
}

// Append stores e in its map's queue and returns its sequence once the
// server has acknowledged it as stored. A redelivered source transaction is
// not queued twice:
//   - the same map, direction and position within the dedupe window is
//     recognised by JetStream's message id and returns the original sequence;
//   - a position that is not after the last one queued for the same map and
//     direction (a source replaying from its last acknowledged position
//     after a restart) is not appended; Append returns the sequence of that
//     last entry, which already covers it.
func (q *Queue) Append(ctx context.Context, e Entry) (uint64, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	if e.Map == "" || e.Direction == "" {
		return 0, fmt.Errorf("append to queue: entry needs a map and a direction (map %q, direction %q)", e.Map, e.Direction)
	}
	if e.Tx.Position.IsZero() {
		return 0, fmt.Errorf("append to queue of map %s: transaction %q has no position", e.Map, e.Tx.ID)
	}
	if e.EnqueuedAt.IsZero() {
		e.EnqueuedAt = time.Now()
	}
	data, err := encodeEntry(e)
	if err != nil {
		return 0, fmt.Errorf("encode queue entry of map %s at %s: %w", e.Map, e.Tx.Position, err)
	}
	if max := q.nc.MaxPayload(); int64(len(data)) > max-1024 {
		return 0, problem.New(problem.QueueEntryTooLarge,
			"map %s: transaction at %s is %d bytes in the queue, above the limit of %d: raise max_payload on the NATS server, or resume the map so that it is applied directly",
			e.Map, e.Tx.Position, len(data), max-1024)
	}
	s, err := q.stream(ctx, e.Map, true)
	if err != nil {
		return 0, err
	}

	d := q.dirState(e.Map, e.Direction)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := q.loadLast(ctx, s, e.Map, e.Direction, d); err != nil {
		return 0, err
	}
	if d.has && !d.last.Less(e.Tx.Position) {
		q.log.Debug("queue skipped redelivered transaction", "map", e.Map, "direction", e.Direction,
			"position", e.Tx.Position.String(), "last", d.last.String(), "seq", d.seq)
		return d.seq, nil
	}

	subj := subject(q.prefix, e.Map, e.Direction)
	id := msgID(e.Map, e.Direction, e.Tx.Position)
	ack, err := q.publish(ctx, subj, id, data)
	if err != nil {
		return 0, fmt.Errorf("append to queue of map %s at %s: %w", e.Map, e.Tx.Position, err)
	}
	if ack.Duplicate {
		if floor := q.purgedThrough(e.Map); ack.Sequence <= floor {
			// The original was dropped by Purge in this process, but the
			// server still remembers its id: store it again under an id
			// that names the purge.
			ack, err = q.publish(ctx, subj, id+"~"+strconv.FormatUint(floor, 10), data)
			if err != nil {
				return 0, fmt.Errorf("append to queue of map %s at %s: %w", e.Map, e.Tx.Position, err)
			}
		}
	}
	// Invariant: Append returns only after the server acknowledged the
	// entry as stored; only then may the engine acknowledge the source.
	d.has, d.last, d.seq = true, e.Tx.Position, ack.Sequence
	return ack.Sequence, nil
}

func (q *Queue) publish(ctx context.Context, subj, id string, data []byte) (*jetstream.PubAck, error) {
	msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	ack, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		return nil, q.unavailable(err)
	}
	return ack, nil
}

// unavailable gives connection-level failures their user-facing code.
func (q *Queue) unavailable(err error) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) {
		return problem.Wrap(problem.QueueUnavailable, err, "the queue's NATS server does not answer: check that it runs, with JetStream enabled and free disk space")
	}
	return err
}

// loadLast fills d from the last stored entry of the map and direction the
// first time the pair is appended to in this process.
func (q *Queue) loadLast(ctx context.Context, s jetstream.Stream, mapName, direction string, d *dirState) error {
	if d.loaded {
		return nil
	}
	m, err := s.GetLastMsgForSubject(ctx, subject(q.prefix, mapName, direction))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		d.has = false
	case err != nil:
		return fmt.Errorf("read last queue entry of map %s from %s: %w", mapName, direction, q.unavailable(err))
	default:
		e, err := decodeEntry(m.Sequence, m.Data)
		if err != nil {
			return err
		}
		d.has, d.last, d.seq = true, e.Tx.Position, m.Sequence
	}
	d.loaded = true
	return nil
}

func (q *Queue) dirState(mapName, direction string) *dirState {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := dirKey{mapName, direction}
	d := q.dirs[k]
	if d == nil {
		d = &dirState{}
		q.dirs[k] = d
	}
	return d
}

func (q *Queue) purgedThrough(mapName string) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.purged[mapName]
}

// stream returns the map's stream, creating it when create is set. It
// returns a nil stream when the stream does not exist and create is not set.
func (q *Queue) stream(ctx context.Context, mapName string, create bool) (jetstream.Stream, error) {
	q.mu.Lock()
	s := q.streams[mapName]
	q.mu.Unlock()
	if s != nil {
		return s, nil
	}
	name := streamName(q.prefix, mapName)
	var err error
	if create {
		s, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: "dualwrite durable queue of map " + mapName,
			Subjects:    []string{mapSubjects(q.prefix, mapName)},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      q.retention,
			Duplicates:  q.dedupe,
			Replicas:    1,
			AllowDirect: true,
			Metadata:    map[string]string{"dualwrite_map": mapName},
		})
		if err != nil {
			return nil, problem.Wrap(problem.QueueUnavailable, err, "create queue stream %s of map %s: check the NATS server's JetStream limits and disk", name, mapName)
		}
	} else {
		s, err = q.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("open queue stream %s of map %s: %w", name, mapName, q.unavailable(err))
		}
	}
	q.mu.Lock()
	q.streams[mapName] = s
	q.mu.Unlock()
	return s, nil
}

// Read returns up to max entries of the map with Seq > afterSeq, in order;
// an empty slice when there are none (or the map never queued anything).
func (q *Queue) Read(ctx context.Context, mapName string, afterSeq uint64, max int) ([]Entry, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	if max < 1 {
		return nil, fmt.Errorf("read queue of map %s: max is %d, must be at least 1", mapName, max)
	}
	s, err := q.stream(ctx, mapName, false)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return []Entry{}, nil
	}
	return q.read(ctx, s, mapName, afterSeq, max, decodeEntry)
}

func (q *Queue) read(ctx context.Context, s jetstream.Stream, mapName string, afterSeq uint64, max int, decode decoder) ([]Entry, error) {
	if q.batchGet {
		return q.readBatched(ctx, mapName, afterSeq+1, max, decode)
	}
	return q.readSingle(ctx, s, mapName, afterSeq+1, max, decode)
}

// Trim drops the map's entries with Seq <= uptoSeq (they were replayed).
func (q *Queue) Trim(ctx context.Context, mapName string, uptoSeq uint64) error {
	if q.closed.Load() {
		return ErrClosed
	}
	s, err := q.stream(ctx, mapName, false)
	if err != nil || s == nil || uptoSeq == 0 {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("trim queue of map %s: %w", mapName, q.unavailable(err))
	}
	// Never purge past the last stored sequence: an entry appended
	// meanwhile gets a later sequence and is kept.
	upto := min(uptoSeq, info.State.LastSeq)
	if upto < info.State.FirstSeq {
		return nil
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(upto+1)); err != nil {
		return fmt.Errorf("trim queue of map %s up to %d: %w", mapName, upto, q.unavailable(err))
	}
	return nil
}

// Stats describes the map's queue; zero Stats when it never queued.
func (q *Queue) Stats(ctx context.Context, mapName string) (Stats, error) {
	if q.closed.Load() {
		return Stats{}, ErrClosed
	}
	s, err := q.stream(ctx, mapName, false)
	if err != nil || s == nil {
		return Stats{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("queue stats of map %s: %w", mapName, q.unavailable(err))
	}
	st := Stats{
		Depth:    int64(info.State.Msgs),
		Bytes:    int64(info.State.Bytes),
		FirstSeq: info.State.FirstSeq,
		LastSeq:  info.State.LastSeq,
	}
	if st.Depth == 0 {
		return st, nil
	}
	// An entry's sequence is never reused within a stream (Purge and Trim
	// keep sequences growing), so the stream's creation time and its
	// first sequence name the entry whose enqueue time is cached.
	q.mu.Lock()
	c, ok := q.oldest[mapName]
	q.mu.Unlock()
	if ok && c.seq == st.FirstSeq && c.created.Equal(info.Created) {
		st.Oldest = c.at
		return st, nil
	}
	first, err := q.read(ctx, s, mapName, info.State.FirstSeq-1, 1, decodeStamp)
	if err != nil {
		return Stats{}, fmt.Errorf("queue stats of map %s: %w", mapName, err)
	}
	if len(first) == 1 {
		st.Oldest = first[0].EnqueuedAt
		q.mu.Lock()
		q.oldest[mapName] = oldestEntry{created: info.Created, seq: first[0].Seq, at: first[0].EnqueuedAt}
		q.mu.Unlock()
	}
	return st, nil
}

// oldestEntry is the enqueue time of the entry seq of a stream created at
// created.
type oldestEntry struct {
	created time.Time
	seq     uint64
	at      time.Time
}

// Purge drops every entry of the map. Sequences keep growing afterwards,
// so a replay cursor never points ahead of new entries.
func (q *Queue) Purge(ctx context.Context, mapName string) error {
	if q.closed.Load() {
		return ErrClosed
	}
	s, err := q.stream(ctx, mapName, false)
	if err != nil || s == nil {
		return err
	}
	// Hold every direction of the map so that no Append runs meanwhile
	// with a stale idea of the last queued position.
	var held []*dirState
	q.mu.Lock()
	for k, d := range q.dirs {
		if k.mapName == mapName {
			held = append(held, d)
		}
	}
	q.mu.Unlock()
	for _, d := range held {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	if err := s.Purge(ctx); err != nil {
		return fmt.Errorf("purge queue of map %s: %w", mapName, q.unavailable(err))
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("purge queue of map %s: %w", mapName, q.unavailable(err))
	}
	q.mu.Lock()
	q.purged[mapName] = info.State.LastSeq
	q.mu.Unlock()
	for _, d := range held {
		d.loaded, d.has, d.last, d.seq = true, false, change.Position{}, 0
	}
	return nil
}

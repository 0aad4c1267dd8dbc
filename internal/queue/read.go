package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchGetSupported reports whether a server version (e.g. "2.15.2") has
// batched direct gets, which arrived in nats-server 2.11.
func batchGetSupported(version string) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 2 || major == 2 && minor >= 11
}

// readBatched reads up to max entries at or after seq with batched direct
// gets: one request answers many messages, then an end-of-batch status.
func (q *Queue) readBatched(ctx context.Context, mapName string, seq uint64, max int, decode decoder) ([]Entry, error) {
	out := []Entry{}
	for len(out) < max {
		got, pending, err := q.directBatch(ctx, mapName, seq, max-len(out), decode)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(got) == 0 || pending == 0 {
			break
		}
		seq = got[len(got)-1].Seq + 1
	}
	return out, nil
}

type directGetRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj"`
	Batch   int    `json:"batch"`
}

// directBatch sends one batched direct get. pending is what the server
// says is left after the batch (it stops early at its max bytes).
func (q *Queue) directBatch(ctx context.Context, mapName string, seq uint64, n int, decode decoder) ([]Entry, uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	req, err := json.Marshal(directGetRequest{Seq: seq, NextFor: mapSubjects(q.prefix, mapName), Batch: n})
	if err != nil {
		return nil, 0, err
	}
	inbox := q.nc.NewInbox()
	sub, err := q.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, fmt.Errorf("read queue of map %s: %w", mapName, q.unavailable(err))
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, 0, err
	}
	subj := "$JS.API.DIRECT.GET." + streamName(q.prefix, mapName)
	if err := q.nc.PublishRequest(subj, inbox, req); err != nil {
		return nil, 0, fmt.Errorf("read queue of map %s: %w", mapName, q.unavailable(err))
	}
	var out []Entry
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("read queue of map %s after %d: %w", mapName, seq-1, q.unavailable(err))
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404":
			return out, 0, nil
		case "204": // end of batch
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return out, pending, nil
		case "503":
			return nil, 0, fmt.Errorf("read queue of map %s: %w", mapName, q.unavailable(nats.ErrNoResponders))
		default:
			return nil, 0, fmt.Errorf("read queue of map %s: direct get answered %s %s", mapName, status, m.Header.Get("Description"))
		}
		s, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("read queue of map %s: direct get without sequence: %w", mapName, err)
		}
		e, err := decode(s, m.Data)
		if err != nil {
			return nil, 0, fmt.Errorf("read queue of map %s: %w", mapName, err)
		}
		out = append(out, e)
	}
}

// readSingle reads with one direct get per entry, for servers before 2.11.
func (q *Queue) readSingle(ctx context.Context, s jetstream.Stream, mapName string, seq uint64, max int, decode decoder) ([]Entry, error) {
	out := []Entry{}
	filter := mapSubjects(q.prefix, mapName)
	for len(out) < max {
		// The first message at or after seq: skips the sequences that
		// Trim or MaxAge removed.
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read queue of map %s after %d: %w", mapName, seq-1, q.unavailable(err))
		}
		e, err := decode(m.Sequence, m.Data)
		if err != nil {
			return nil, fmt.Errorf("read queue of map %s: %w", mapName, err)
		}
		out = append(out, e)
		seq = m.Sequence + 1
	}
	return out, nil
}

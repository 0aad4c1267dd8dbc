// Package queue is the durable change log of maps that are Paused,
// Initializing or Resuming: the engine keeps capturing, appends each map's
// share of every source transaction here, and replays it in order when the
// map runs again.
//
// The queue is NATS JetStream, one file-backed stream per map, either run
// embedded in-process (no TCP listener) or on an external NATS server. An
// entry is durable when Append returns: the engine acknowledges the source
// position only after that. See docs/adr/20261122-durable-queue-jetstream.md.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Defaults of Options.
const (
	DefaultPrefix    = "DW"
	DefaultRetention = 24 * time.Hour
	// DefaultDedupeWindow is how long JetStream remembers message ids. It
	// covers a publish retried after a lost acknowledgement and a source
	// that redelivers soon after a reconnect; later redeliveries are caught
	// by the per-direction position check in Append (see the ADR).
	DefaultDedupeWindow = 2 * time.Minute
)

// embeddedMaxPayload is the largest entry the embedded server accepts
// (the NATS protocol maximum). External servers use their own max_payload.
const embeddedMaxPayload = 64 << 20

// ErrClosed is returned by every method called after Close. The caller
// should stop using the queue; open a new one to continue.
var ErrClosed = errors.New("queue is closed")

// Options configure Open.
type Options struct {
	// Dir is the data directory of the embedded server's file store
	// (JetStream store_dir). Required when URL is empty.
	Dir string
	// URL is an external NATS server (e.g. nats://127.0.0.1:4222) with
	// JetStream enabled. Empty runs nats-server embedded in-process.
	URL string
	// Prefix starts every stream name and subject; default "DW". It lets
	// tests and several links share one NATS. Letters, digits and '-' only.
	Prefix string
	// Retention is the maximum age of queued entries (default 24h). A
	// change of it is applied to existing streams on Open.
	Retention time.Duration
	Logger    *slog.Logger

	// noFsync turns SyncAlways off on the embedded server. Only the
	// benchmark sets it, to measure the cost of fsync against a baseline.
	noFsync bool
	// singleGet forces one direct get per entry in Read, as with a server
	// older than 2.11; tests use it to cover that path on any server.
	singleGet bool
}

// Entry is one map's share of one source transaction.
type Entry struct {
	// Seq is assigned by the queue; it orders the entries of one map.
	Seq       uint64
	Map       string
	Direction string // source side name, e.g. "erp"
	Tx        change.Tx
	// EnqueuedAt is the caller's clock at Append (set to time.Now when
	// zero). Stats.Oldest is derived from it.
	EnqueuedAt time.Time
}

// Stats describe one map's queue.
type Stats struct {
	Depth    int64
	Bytes    int64
	FirstSeq uint64
	LastSeq  uint64
	// Oldest is the EnqueuedAt of the first entry; zero when empty.
	Oldest time.Time
}

// Queue is the durable queue. It is safe for concurrent use.
type Queue struct {
	log       *slog.Logger
	prefix    string
	retention time.Duration
	dedupe    time.Duration

	srv *server.Server // nil with an external NATS
	nc  *nats.Conn
	js  jetstream.JetStream
	// batchGet is set when the server answers batched direct gets.
	batchGet bool

	closed    atomic.Bool
	closeOnce sync.Once

	mu      sync.Mutex
	streams map[string]jetstream.Stream // by map name
	dirs    map[dirKey]*dirState
	purged  map[string]uint64 // map name → last sequence removed by Purge in this process
	// oldest caches, per map, the enqueue time of the stream's first
	// entry, so Stats (read at every view of a map) does not fetch that
	// entry, megabytes for a large transaction, again and again.
	oldest map[string]oldestEntry
}

type dirKey struct{ mapName, direction string }

// dirState remembers the last entry queued for one map and direction, so
// that a redelivered source transaction is recognised at any age.
type dirState struct {
	mu     sync.Mutex // serialises Append per map and direction
	loaded bool
	has    bool
	last   change.Position
	seq    uint64
}

// Open starts the embedded server (or connects to o.URL), checks JetStream
// and applies o.Retention to the streams that already exist under o.Prefix.
func Open(ctx context.Context, o Options) (*Queue, error) {
	q := &Queue{
		log:       o.Logger,
		prefix:    o.Prefix,
		retention: o.Retention,
		streams:   map[string]jetstream.Stream{},
		dirs:      map[dirKey]*dirState{},
		purged:    map[string]uint64{},
		oldest:    map[string]oldestEntry{},
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.prefix == "" {
		q.prefix = DefaultPrefix
	}
	if !validPrefix(q.prefix) {
		return nil, problem.New(problem.ConfigInvalid, "queue prefix %q is invalid: use 1 to 32 letters, digits or '-'", q.prefix)
	}
	if q.retention == 0 {
		q.retention = DefaultRetention
	}
	if q.retention < 0 {
		return nil, problem.New(problem.ConfigInvalid, "queue retention %s is negative: set engine.queue_retention to a positive duration such as 24h", q.retention)
	}
	// JetStream refuses a duplicates window longer than the stream's MaxAge.
	q.dedupe = min(DefaultDedupeWindow, q.retention)

	if o.URL == "" {
		if err := q.startEmbedded(o.Dir, !o.noFsync); err != nil {
			return nil, err
		}
	} else {
		nc, err := nats.Connect(o.URL,
			nats.Name("dualwrite-queue"),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(500*time.Millisecond),
		)
		if err != nil {
			return nil, problem.Wrap(problem.QueueUnavailable, err,
				"cannot reach the queue's NATS server at %s: check engine.queue_url and that nats-server is running", o.URL)
		}
		q.nc = nc
	}

	q.batchGet = !o.singleGet && batchGetSupported(q.nc.ConnectedServerVersion())
	js, err := jetstream.New(q.nc)
	if err != nil {
		q.Close()
		return nil, problem.Wrap(problem.QueueUnavailable, err, "open JetStream: check that the NATS server runs with JetStream enabled (-js)")
	}
	q.js = js
	if _, err := js.AccountInfo(ctx); err != nil {
		q.Close()
		return nil, problem.Wrap(problem.QueueUnavailable, err,
			"JetStream does not answer: check that the NATS server runs with JetStream enabled (-js) and has storage left")
	}
	if err := q.applyRetention(ctx); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *Queue) startEmbedded(dir string, fsync bool) error {
	if dir == "" {
		return problem.New(problem.ConfigInvalid, "queue directory is empty: set engine.data_dir, or engine.queue_url for an external NATS")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return problem.Wrap(problem.QueueUnavailable, err, "create queue directory %s: check the path and its permissions", dir)
	}
	opts := &server.Options{
		ServerName: "dualwrite-queue",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		// Invariant: an entry acknowledged by Append is on disk. The file
		// store writes every message before the PubAck (which already
		// survives kill -9); SyncAlways adds an fsync so that it also
		// survives a power cut or kernel crash. See the ADR for the cost.
		SyncAlways: fsync,
		MaxPayload: embeddedMaxPayload,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return problem.Wrap(problem.QueueUnavailable, err, "configure the embedded queue server")
	}
	debug := q.log.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(serverLogger{q.log}, debug, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return problem.New(problem.QueueUnavailable,
			"the embedded queue server did not start within 30s: check that %s is writable and not used by another dualwrite process", dir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return problem.New(problem.QueueUnavailable,
			"the embedded queue server started without JetStream: check that %s is writable, has free space and is not used by another dualwrite process", dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("dualwrite-queue"))
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return problem.Wrap(problem.QueueUnavailable, err, "connect to the embedded queue server")
	}
	q.srv = srv
	q.nc = nc
	return nil
}

// applyRetention brings every existing stream under the prefix to the
// configured MaxAge and duplicates window.
func (q *Queue) applyRetention(ctx context.Context) error {
	names := q.js.StreamNames(ctx, jetstream.WithStreamListSubject(allSubjects(q.prefix)))
	for name := range names.Name() {
		s, err := q.js.Stream(ctx, name)
		if err != nil {
			return problem.Wrap(problem.QueueUnavailable, err, "read queue stream %s", name)
		}
		cfg := s.CachedInfo().Config
		if cfg.MaxAge == q.retention && cfg.Duplicates == q.dedupe {
			continue
		}
		q.log.Info("queue retention changed", "stream", name, "from", cfg.MaxAge, "to", q.retention)
		cfg.MaxAge = q.retention
		cfg.Duplicates = q.dedupe
		if _, err := q.js.UpdateStream(ctx, cfg); err != nil {
			return problem.Wrap(problem.QueueUnavailable, err, "apply retention %s to queue stream %s", q.retention, name)
		}
	}
	if err := names.Err(); err != nil {
		return problem.Wrap(problem.QueueUnavailable, err, "list queue streams")
	}
	return nil
}

// Close closes the connection and shuts the embedded server down. It is
// synchronous and idempotent.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.closed.Store(true)
		if q.nc != nil {
			q.nc.Close()
		}
		if q.srv != nil {
			q.srv.Shutdown()
			q.srv.WaitForShutdown()
		}
	})
	return nil
}

// serverLogger routes the embedded server's log lines to slog. Routine
// lines go to debug; warnings and errors keep their level so that a disk
// problem is not hidden.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }
func (l serverLogger) Warnf(format string, v ...any) {
	// The embedded server warns about the payload limit we chose on
	// purpose (one map's share of a large transaction must fit).
	if strings.HasPrefix(format, "Maximum payloads over") {
		l.emit(slog.LevelDebug, format, v)
		return
	}
	l.emit(slog.LevelWarn, format, v)
}
func (l serverLogger) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v) }
func (l serverLogger) Fatalf(format string, v ...any) { l.emit(slog.LevelError, format, v) }

func (l serverLogger) emit(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, "queue server", "line", fmt.Sprintf(format, v...))
}

// Package bench measures the engine against the databases' own tools on
// the same machine and in the same run: initial sync next to a plain bulk
// copy, live sync next to PostgreSQL's native logical replication, and the
// engine's peak memory. The engine under test is the real binary, run as a
// child process (`dualwrite serve`) and driven through its HTTP API, as a
// user runs it. `dualwrite bench postgres|mysql` is the command; BENCHMARKS.md
// at the repository root holds the figures of a full run.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Options are the settings of one bench run.
type Options struct {
	// Target is "postgres" (PostgreSQL -> PostgreSQL) or "mysql"
	// (PostgreSQL <-> MariaDB).
	Target string
	// Rows is the table size of the initial sync; the memory figure is
	// also taken at a tenth of it.
	Rows int
	// Rate is the offered rate of the fixed-rate live phase, in single-row
	// transactions per second.
	Rate int
	// Duration is how long each live phase writes.
	Duration time.Duration
	// PG is an admin DSN of the PostgreSQL server (URL or key=value).
	PG string
	// MySQL is an admin DSN of the MariaDB server (go-sql-driver form).
	MySQL string
	// Keep leaves the databases and the engine's directory in place.
	Keep bool
	// Engine is the dualwrite binary to run as the engine; empty means
	// the running executable.
	Engine string
	// CommandLine is printed at the top of the report, so a reader can
	// repeat the run.
	CommandLine string
	// Out receives the report, Progress a line per step.
	Out, Progress io.Writer
}

// Defaults of the command's flags.
const (
	DefaultRows     = 1_000_000
	DefaultRate     = 2000
	DefaultDuration = 10 * time.Second
	DefaultPG       = "postgres://postgres@127.0.0.1:5432/postgres"
	DefaultMySQL    = "root@tcp(127.0.0.1:3306)/"
)

// Targets are the values Options.Target accepts.
var Targets = []string{"postgres", "mysql"}

// Writers of the live phases: the paced writer spreads its fixed rate
// over a few connections so one slow commit does not hold the schedule
// back; saturation uses more, as many applications would.
const (
	pacedWriters      = 8
	saturationWriters = 8
)

// stallTimeout is how long a wait (initial sync, rows arriving) may go
// without any progress before the bench gives up.
const stallTimeout = 2 * time.Minute

// Validate checks the options a caller can get wrong.
func (o *Options) Validate() error {
	switch {
	case !slices.Contains(Targets, o.Target):
		return problem.New(problem.ConfigInvalid, "bench target %q is not known; use postgres or mysql", o.Target)
	case o.Rows < 10:
		return problem.New(problem.ConfigInvalid, "--rows must be at least 10, got %d", o.Rows)
	case o.Rate < 1:
		return problem.New(problem.ConfigInvalid, "--rate must be at least 1 change per second, got %d", o.Rate)
	case o.Duration < 100*time.Millisecond:
		return problem.New(problem.ConfigInvalid, "--duration must be at least 100ms, got %s", o.Duration)
	}
	return nil
}

// Run runs the bench for o.Target and writes the report to o.Out. When a
// step fails, the figures measured so far are still reported, and the
// error says which step failed.
func Run(ctx context.Context, o Options) (err error) {
	if o.Rows == 0 {
		o.Rows = DefaultRows
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.PG == "" {
		o.PG = DefaultPG
	}
	if o.MySQL == "" {
		o.MySQL = DefaultMySQL
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Engine == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the dualwrite executable to run as the engine: %w", err)
		}
		o.Engine = exe
	}
	if _, err := os.Stat(o.Engine); err != nil {
		return problem.New(problem.ConfigInvalid, "engine binary %s cannot be used: %v", o.Engine, err)
	}
	b, err := newBench(o)
	if err != nil {
		return err
	}
	defer func() {
		// A failed run keeps the engines' logs for the reader.
		b.keepDir = err != nil && ctx.Err() == nil && b.engines > 0
		// Clean up even when the run was interrupted.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if cerr := b.cleanup(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		b.rep.write(o.Out)
	}()
	switch o.Target {
	case "postgres":
		return b.postgres(ctx)
	default:
		return b.mysql(ctx)
	}
}

// bench is one run: its options, its names, the report it fills and what
// to undo at the end.
type bench struct {
	o   Options
	id  string // random suffix of every database, link and slot of the run
	dir string // the engines' configurations, state and logs
	rep *report
	// undo runs in reverse order at the end.
	undo []undoStep
	// engines counts the engine processes started, for their link names.
	engines int
	// keepDir keeps dir at the end even without --keep.
	keepDir bool
}

type undoStep struct {
	what string
	fn   func(ctx context.Context) error
}

func newBench(o Options) (*bench, error) {
	var buf [4]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return nil, fmt.Errorf("random run id: %w", err)
	}
	dir, err := os.MkdirTemp("", "dualwrite-bench-")
	if err != nil {
		return nil, fmt.Errorf("create the bench directory: %w", err)
	}
	b := &bench{o: o, id: hex.EncodeToString(buf[:]), dir: dir, rep: newReport(o)}
	b.deferUndo("remove "+dir, func(context.Context) error {
		if o.Keep || b.keepDir {
			b.logf("kept the engines' directory %s (configurations, state, logs)", dir)
			return nil
		}
		return os.RemoveAll(dir)
	})
	return b, nil
}

// deferUndo registers a step for the end of the run.
func (b *bench) deferUndo(what string, fn func(ctx context.Context) error) {
	b.undo = append(b.undo, undoStep{what: what, fn: fn})
}

func (b *bench) cleanup(ctx context.Context) error {
	var errs []error
	for i := len(b.undo) - 1; i >= 0; i-- {
		if err := b.undo[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.undo[i].what, err))
		}
	}
	b.undo = nil
	return errors.Join(errs...)
}

// logf prints a progress line.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Progress, "bench: "+format+"\n", args...)
}

// dbName is the name of one of the run's databases.
func (b *bench) dbName(role string) string { return "dw_bench_" + b.id + "_" + role }

// smallRows is the smaller table size of the memory figure.
func (b *bench) smallRows() int { return max(b.o.Rows/10, 1) }

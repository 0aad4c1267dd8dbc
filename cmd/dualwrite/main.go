// Command dualwrite keeps two applications' databases in sync, both ways,
// in near real time. `dualwrite --help` lists the commands.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dualwrite/dualwrite/internal/app"
	"github.com/dualwrite/dualwrite/internal/bench"
	"github.com/dualwrite/dualwrite/internal/cli"
	"github.com/dualwrite/dualwrite/internal/demo"
)

func main() {
	// SIGINT/SIGTERM are a soft stop: the engine finishes the transaction
	// in hand, saves its positions and exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := cli.Handlers{
		Serve: func(ctx context.Context, path string, log *slog.Logger) error { return app.Serve(ctx, path, log) },
		Validate: func(ctx context.Context, path string, out io.Writer, asJSON bool) (int, error) {
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			return app.Validate(ctx, path, out, asJSON, quiet)
		},
		Demo: func(ctx context.Context, o cli.DemoOptions) error {
			return demo.Run(ctx, demo.Options{
				Dir: o.Dir, Once: o.Once, Listen: o.Listen,
				LeftDriver: o.LeftDriver, LeftDSN: o.LeftDSN, RightDriver: o.RightDriver, RightDSN: o.RightDSN,
				Out: o.Out, Logger: o.Logger,
			})
		},
		Ownership: func(ctx context.Context, o cli.OwnershipOptions) error {
			return app.Ownership(ctx, app.OwnershipRequest{ConfigPath: o.ConfigPath, Action: o.Action, Side: o.Side, Stream: o.Stream, Out: o.Out}, slog.Default())
		},
		Bench: func(ctx context.Context, o cli.BenchOptions) error {
			return bench.Run(ctx, bench.Options{
				Target: o.Target, Rows: o.Rows, Rate: o.Rate, Duration: o.Duration,
				PG: o.PG, MySQL: o.MySQL, Keep: o.Keep, Engine: o.Engine,
				CommandLine: o.CommandLine, Out: o.Out, Progress: o.Progress,
			})
		},
	}
	env := cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, IsTerminal: isTerminal(os.Stdout),
		Server:  os.Getenv("DUALWRITE_SERVER"),
		Token:   os.Getenv("DUALWRITE_TOKEN"),
		Config:  os.Getenv("DUALWRITE_CONFIG"),
		Version: app.Version,
		Logging: cli.Logging{Format: os.Getenv("DUALWRITE_LOG_FORMAT"), Level: os.Getenv("DUALWRITE_LOG_LEVEL")},
	}
	code := cli.Run(ctx, os.Args[1:], env, h)
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

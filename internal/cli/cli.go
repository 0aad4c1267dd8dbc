// Package cli is the dualwrite command line: `serve`, `validate`, `demo`
// and `bench` run in-process through Handlers; the `maps` commands drive a
// running engine through its HTTP API (internal/api). docs/CLI.md
// documents every command.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Handlers are the in-process commands, wired by cmd/dualwrite.
type Handlers struct {
	// Serve runs the engine; log is built from --log-format and --log-level.
	Serve    func(ctx context.Context, configPath string, log *slog.Logger) error
	Validate func(ctx context.Context, configPath string, out io.Writer, asJSON bool) (problems int, err error)
	Demo     func(ctx context.Context, o DemoOptions) error
	Bench    func(ctx context.Context, o BenchOptions) error
	// Ownership runs a `dualwrite ownership` command on a configuration's link.
	Ownership func(ctx context.Context, o OwnershipOptions) error
}

// DemoOptions are the flags of `dualwrite demo`.
type DemoOptions struct {
	Dir                   string
	Once                  bool
	Listen                string
	LeftDriver, LeftDSN   string
	RightDriver, RightDSN string
	Out                   io.Writer
	// Logger is built from --log-format and --log-level.
	Logger *slog.Logger
}

// BenchOptions are the flags of `dualwrite bench postgres|mysql`.
type BenchOptions struct {
	Target   string // "postgres" or "mysql"
	Rows     int
	Rate     int
	Duration time.Duration
	PG       string // admin DSN of PostgreSQL
	MySQL    string // admin DSN of MariaDB
	Keep     bool
	Engine   string // the dualwrite binary to run as the engine; empty: this one
	// CommandLine is the command as typed, for the report.
	CommandLine string
	// Out receives the report, Progress a line per step.
	Out, Progress io.Writer
}

// Env is the process environment the CLI runs in.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// IsTerminal is true when stdout is a terminal; `maps run --wait` then
	// draws a progress bar instead of printing a line per second.
	IsTerminal bool
	// Server is the default API URL (cmd/ reads DUALWRITE_SERVER); empty
	// means the configuration's engine.listen, else DefaultServer.
	Server string
	// Token is the default access token (cmd/ reads DUALWRITE_TOKEN).
	Token string
	// Config is the default configuration file of the maps commands
	// (cmd/ reads DUALWRITE_CONFIG).
	Config string
	// Version is what --version prints.
	Version string
	// Logging is the default of --log-format and --log-level (cmd/ reads
	// DUALWRITE_LOG_FORMAT and DUALWRITE_LOG_LEVEL).
	Logging Logging

	// pollEvery is how often --wait polls; zero means every second. Tests
	// shorten it.
	pollEvery time.Duration
}

// DefaultServer is where the maps commands look for the engine when
// neither --server nor DUALWRITE_SERVER says otherwise.
const DefaultServer = "http://127.0.0.1:7070"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed, or found problems
	exitUsage   = 2 // the command line is wrong
)

// usageError is a mistake on the command line: exit 2, with a pointer to
// the command's help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitStatus ends a command with a code and no message of its own (the
// command has already said why, e.g. validate's problem report).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// action runs a command once its flags are parsed; args are the
// positional arguments.
type action func(ctx context.Context, args []string) error

// command is one leaf command of the tree.
type command struct {
	name     string // full name without "dualwrite", e.g. "maps run"
	args     string // positional synopsis, e.g. "NAME"
	summary  string
	desc     string
	examples []string
	// setup defines the command's flags on fs and returns the action,
	// which reads them through the closure once fs is parsed.
	setup func(r *runner, fs *flag.FlagSet) action
}

// group is a command that only holds sub-commands.
type group struct {
	name, summary, desc string
	examples            []string
}

var groups = []group{{
	name:    "maps",
	summary: "inspect and operate the maps of a running engine",
	desc: "The maps commands talk to a running engine (`dualwrite serve`) over its HTTP API.\n" +
		"Every one takes --server URL and --token TOKEN; on the engine's machine they default to the\n" +
		"address and the token of the configuration (--config FILE, $DUALWRITE_CONFIG or ./" + DefaultConfig + ").",
	examples: []string{"dualwrite maps list", "dualwrite maps run customers --with-related --wait"},
}, ownershipGroup}

// runner carries the environment through one Run.
type runner struct {
	env     Env
	h       Handlers
	args    []string // the command line, without the program name
	logging Logging
}

// Run runs the command line args (without the program name) and returns
// the process exit code: 0 on success, 1 when the command failed, 2 when
// the command line is wrong.
func Run(ctx context.Context, args []string, env Env, h Handlers) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.pollEvery <= 0 {
		env.pollEvery = time.Second
	}
	r := &runner{env: env, h: h, args: args, logging: env.Logging}
	args, code, done := r.globalFlags(args)
	if done {
		return code
	}
	return r.dispatch(ctx, args)
}

// globalFlags parses the flags before the command: --version, and
// --log-format and --log-level. done reports that the command line was
// answered (version printed, or a usage error) with code.
func (r *runner) globalFlags(args []string) (rest []string, code int, done bool) {
	fs := flag.NewFlagSet("dualwrite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	version := fs.Bool("version", false, "print the version and exit")
	r.loggingFlags(fs)
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && !isHelp(args[i]) {
		i++
		if !strings.Contains(args[i-1], "=") && (strings.TrimLeft(args[i-1], "-") == "log-format" || strings.TrimLeft(args[i-1], "-") == "log-level") {
			i++ // the flag's value
		}
	}
	if err := fs.Parse(args[:min(i, len(args))]); err != nil {
		fmt.Fprintf(r.env.Stderr, "error: %v\nRun 'dualwrite --help' for usage.\n", err)
		return nil, exitUsage, true
	}
	if *version {
		v := r.env.Version
		if v == "" {
			v = "dev"
		}
		fmt.Fprintf(r.env.Stdout, "dualwrite %s\n", v)
		return nil, exitOK, true
	}
	return args[min(i, len(args)):], 0, false
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" || s == "help" }

func (r *runner) dispatch(ctx context.Context, args []string) int {
	if len(args) == 0 {
		r.topUsage(r.env.Stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) > 1 && args[0] == "help" {
			// `dualwrite help maps run` is `dualwrite maps run --help`.
			return r.dispatch(ctx, append(slices.Clone(args[1:]), "--help"))
		}
		r.topUsage(r.env.Stdout)
		return exitOK
	}
	for _, g := range groups {
		if args[0] != g.name {
			continue
		}
		if len(args) == 1 {
			fmt.Fprintf(r.env.Stderr, "error: %s needs a command\n\n", g.name)
			r.groupUsage(r.env.Stderr, g)
			return exitUsage
		}
		if isHelp(args[1]) {
			r.groupUsage(r.env.Stdout, g)
			return exitOK
		}
		c := findCommand(g.name + " " + args[1])
		if c == nil {
			fmt.Fprintf(r.env.Stderr, "error: unknown command %q\nRun 'dualwrite %s --help' for the commands.\n", g.name+" "+args[1], g.name)
			return exitUsage
		}
		return r.runCommand(ctx, c, args[2:])
	}
	c := findCommand(args[0])
	if c == nil || strings.Contains(c.name, " ") {
		fmt.Fprintf(r.env.Stderr, "error: unknown command %q\nRun 'dualwrite --help' for the commands.\n", args[0])
		return exitUsage
	}
	return r.runCommand(ctx, c, args[1:])
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (r *runner) runCommand(ctx context.Context, c *command, args []string) int {
	fs := flag.NewFlagSet("dualwrite "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print usage and errors ourselves
	act := c.setup(r, fs)
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(r.env.Stdout, c, fs)
		return exitOK
	case err != nil:
		err = &usageError{msg: err.Error()}
	default:
		err = act(ctx, pos)
	}
	return r.finish(c, err)
}

// finish prints err as the user should see it and returns the exit code.
func (r *runner) finish(c *command, err error) int {
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(r.env.Stderr, "error: %v\nRun 'dualwrite %s --help' for usage.\n", err, c.name)
		return exitUsage
	}
	if errors.Is(err, context.Canceled) {
		// An interrupt, not a fault: no code, no bug report.
		fmt.Fprintf(r.env.Stderr, "interrupted: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(r.env.Stderr, "error: %s\n", describe(err))
	return exitFailure
}

// describe renders err as "<code> <message>": the code of the first coded
// error in the chain, DW9000 when there is none.
func describe(err error) string {
	var pe *problem.Error
	if !errors.As(err, &pe) {
		return fmt.Sprintf("%s %v", problem.Internal, err)
	}
	if error(pe) == err {
		return pe.Error()
	}
	// Context was added around the coded error: keep it, code first.
	return fmt.Sprintf("%s %s", pe.Code, strings.Replace(err.Error(), string(pe.Code)+" ", "", 1))
}

// parseInterspersed parses flags anywhere among the positional arguments
// (`maps run customers --with-related`); the standard flag package stops
// at the first non-flag. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

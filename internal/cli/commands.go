package cli

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// commands is the command tree's leaves, in the order help lists them.
func commands() []*command {
	return append([]*command{
		{
			name:    "serve",
			summary: "run the engine and its HTTP API",
			desc: "Run the engine for the link described in the configuration file and serve the HTTP API\n" +
				"(docs/API.md) that the maps commands use. Stops softly on SIGINT or SIGTERM.",
			examples: []string{"dualwrite serve --config dualwrite.yaml"},
			setup:    setupServe,
		},
		{
			name:    "validate",
			args:    "FILE",
			summary: "check a configuration file and both databases",
			desc: "Check a configuration file: syntax, fields, and every map against both databases (tables,\n" +
				"columns, keys, types, server settings). Exits 1 when it finds problems.",
			examples: []string{"dualwrite validate dualwrite.yaml", "dualwrite validate dualwrite.yaml --output json"},
			setup:    setupValidate,
		},
		{
			name:    "demo",
			summary: "run a self-contained demo of two synced databases",
			desc: "Create two demo databases (SQLite in --dir unless drivers and DSNs are given), sync them\n" +
				"with the engine and serve the API, so the maps commands can be tried at once.",
			examples: []string{
				"dualwrite demo",
				"dualwrite demo --dir /tmp/dw-demo --once",
				"dualwrite demo --left-driver postgres --left-dsn postgres://postgres@127.0.0.1/erp --right-driver mysql --right-dsn 'root@tcp(127.0.0.1:3306)/crm'",
			},
			setup: setupDemo,
		},
		{
			name:    "bench",
			args:    "postgres|mysql",
			summary: "measure sync speed and memory next to the databases' own tools",
			desc: "Measure the engine on this machine, next to a baseline run in the same process: initial sync\n" +
				"of --rows rows against a plain bulk copy (COPY, LOAD DATA), live sync throughput and latency at\n" +
				"--rate and at saturation (postgres: against native logical replication), and the engine's peak\n" +
				"memory. The engine runs as `dualwrite serve` on databases dw_bench_* that are dropped at the end\n" +
				"unless --keep. Prints a table of figures with units and ratios.",
			examples: []string{
				"dualwrite bench postgres",
				"dualwrite bench mysql --rows 100000 --duration 5s",
				"dualwrite bench postgres --pg postgres://postgres@db:5432/postgres --rate 5000",
			},
			setup: setupBench,
		},
		{
			name:     "maps list",
			summary:  "list the maps with their status, errors and queue",
			desc:     "List every map of the engine: status, last sync, initial sync and catch-up error counts, and\nthe queue of changes waiting (depth and age of the oldest).",
			examples: []string{"dualwrite maps list", "dualwrite maps list --output json", "dualwrite maps list --config /etc/dualwrite/dualwrite.yaml", "dualwrite maps list --server https://engine:7070 --token \"$(cat viewer.token)\""},
			setup:    setupMapsList,
		},
		{
			name:     "maps show",
			args:     "NAME",
			summary:  "show one map in detail",
			desc:     "Show one map: tables, status and allowed actions, dependencies, initial sync progress,\nerrors, queue, applied counts, lag and validation problems.",
			examples: []string{"dualwrite maps show customers", "dualwrite maps show customers --output json"},
			setup:    setupMapsShow,
		},
		{
			name:    "maps run",
			args:    "NAME",
			summary: "start or resume a map",
			desc: "Run a map. A map that is not running starts with an initial sync (unless --skip-initial-sync);\n" +
				"a paused map resumes and catches up on its queue. Maps it depends on that are not running are\n" +
				"recommended, or run first with --with-related. --wait follows the initial sync until it ends.",
			examples: []string{
				"dualwrite maps run customers",
				"dualwrite maps run orders --with-related --wait",
				"dualwrite maps run customers --skip-initial-sync --master right",
			},
			setup: setupMapsRun,
		},
		{
			name:     "maps pause",
			args:     "NAME",
			summary:  "pause a running map; changes queue until it runs again",
			desc:     "Pause a map. Changes on both sides are queued durably and applied when the map runs again.",
			examples: []string{"dualwrite maps pause customers", "dualwrite maps pause customers --with-related"},
			setup:    setupMapsPause,
		},
		{
			name:     "maps stop",
			args:     "NAME",
			summary:  "stop a map; its queue is dropped",
			desc:     "Stop a map. Nothing is queued while it is stopped; running it again starts with an initial sync.",
			examples: []string{"dualwrite maps stop customers"},
			setup:    setupMapsStop,
		},
		{
			name:    "maps errors",
			args:    "NAME",
			summary: "list a map's initial sync or catch-up errors",
			desc: "List the rows that failed in a map's initial sync, or with --catch-up the changes that failed\n" +
				"to apply while catching up. The table shows the first 5; --output json lists all.",
			examples: []string{"dualwrite maps errors orders", "dualwrite maps errors orders --catch-up", "dualwrite maps errors orders --output json"},
			setup:    setupMapsErrors,
		},
		{
			name:     "maps rerun",
			args:     "NAME",
			summary:  "retry only the rows that failed in the initial sync",
			desc:     "Retry the rows that failed in the map's last initial sync, without syncing the others again.",
			examples: []string{"dualwrite maps rerun orders"},
			setup:    setupMapsRerun,
		},
		{
			name:    "maps retry",
			args:    "NAME (--all | ID...)",
			summary: "retry catch-up errors",
			desc: "Retry catch-up errors of a map, by ID (from `dualwrite maps errors NAME --catch-up`) or --all.\n" +
				"Changes parked behind an error are applied after it.",
			examples: []string{"dualwrite maps retry products 201 202", "dualwrite maps retry products --all"},
			setup:    setupMapsRetry,
		},
		{
			name:    "maps discard",
			args:    "NAME (--all | ID...)",
			summary: "discard catch-up errors",
			desc: "Discard catch-up errors of a map, by ID or --all: the failed changes are dropped for good and\n" +
				"the changes parked behind them go on.",
			examples: []string{"dualwrite maps discard products 201", "dualwrite maps discard products --all"},
			setup:    setupMapsDiscard,
		},
		{
			name:     "maps log",
			args:     "NAME",
			summary:  "show a map's activity log",
			desc:     "Show a map's activity log, newest first: status changes, actions and who took them, errors,\nconflicts and warnings.",
			examples: []string{"dualwrite maps log customers", "dualwrite maps log customers --limit 100 --output json"},
			setup:    setupMapsLog,
		},
	}, ownershipCommands()...)
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

func oneName(args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usagef("missing the map NAME")
	case 1:
		return args[0], nil
	}
	return "", usagef("expected one map NAME, got %d arguments: %s", len(args), strings.Join(args, " "))
}

func outputFlag(fs *flag.FlagSet, allowed ...string) func() (bool, error) {
	v := fs.String("output", allowed[0], "output `FORMAT`: "+strings.Join(allowed, " or "))
	return func() (bool, error) {
		if !slices.Contains(allowed, *v) {
			return false, usagef("--output must be %s, got %q", strings.Join(allowed, " or "), *v)
		}
		return *v == "json", nil
	}
}

func missingHandler(name string) error {
	return problem.New(problem.Internal, "%s is not available in this build of dualwrite; report it as a bug", name)
}

func setupServe(r *runner, fs *flag.FlagSet) action {
	config := fs.String("config", "", "the configuration `FILE` (required)")
	r.loggingFlags(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *config == "" {
			return usagef("--config FILE is required")
		}
		log, err := r.logger()
		if err != nil {
			return err
		}
		if r.h.Serve == nil {
			return missingHandler("serve")
		}
		return r.h.Serve(ctx, *config, log)
	}
}

func setupValidate(r *runner, fs *flag.FlagSet) action {
	output := outputFlag(fs, "text", "json")
	return func(ctx context.Context, args []string) error {
		asJSON, err := output()
		if err != nil {
			return err
		}
		if len(args) != 1 {
			return usagef("expected one configuration FILE, got %d arguments", len(args))
		}
		if r.h.Validate == nil {
			return missingHandler("validate")
		}
		n, err := r.h.Validate(ctx, args[0], r.env.Stdout, asJSON)
		if err != nil {
			return err
		}
		if n > 0 {
			return exitStatus(exitFailure) // the report has said what is wrong
		}
		return nil
	}
}

func setupDemo(r *runner, fs *flag.FlagSet) action {
	var o DemoOptions
	fs.StringVar(&o.Dir, "dir", "", "`DIR` for the demo's SQLite databases and state (default: a new temporary directory)")
	fs.BoolVar(&o.Once, "once", false, "make one round of demo changes, wait until both sides agree, and exit")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:7070", "`ADDR`ess to serve the API on")
	fs.StringVar(&o.LeftDriver, "left-driver", "", "left side's `DRIVER`: sqlite, postgres or mysql")
	fs.StringVar(&o.LeftDSN, "left-dsn", "", "left side's `DSN`")
	fs.StringVar(&o.RightDriver, "right-driver", "", "right side's `DRIVER`: sqlite, postgres or mysql")
	fs.StringVar(&o.RightDSN, "right-dsn", "", "right side's `DSN`")
	r.loggingFlags(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if (o.LeftDriver == "") != (o.LeftDSN == "") {
			return usagef("--left-driver and --left-dsn go together")
		}
		if (o.RightDriver == "") != (o.RightDSN == "") {
			return usagef("--right-driver and --right-dsn go together")
		}
		if r.h.Demo == nil {
			return missingHandler("demo")
		}
		o.Out = r.env.Stdout
		if r.logging.Level == "" {
			// The tour's output stays readable: warnings and errors only,
			// unless a level is asked for.
			r.logging.Level = "warn"
		}
		log, err := r.logger()
		if err != nil {
			return err
		}
		o.Logger = log
		return r.h.Demo(ctx, o)
	}
}

func setupBench(r *runner, fs *flag.FlagSet) action {
	var o BenchOptions
	fs.IntVar(&o.Rows, "rows", 1_000_000, "table size of the initial sync, in `ROWS` (memory is also measured at a tenth)")
	fs.IntVar(&o.Rate, "rate", 2000, "offered `RATE` of the fixed-rate live phase, in single-row transactions per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each live phase writes, a `DURATION` such as 10s or 1m")
	fs.StringVar(&o.PG, "pg", "postgres://postgres@127.0.0.1:5432/postgres", "admin `DSN` of PostgreSQL")
	fs.StringVar(&o.MySQL, "mysql", "root@tcp(127.0.0.1:3306)/", "admin `DSN` of MariaDB (bench mysql)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the bench databases and the engines' directory")
	fs.StringVar(&o.Engine, "engine", "", "the dualwrite `BINARY` to run as the engine (default: this one)")
	return func(ctx context.Context, args []string) error {
		switch {
		case len(args) == 0:
			return usagef("missing what to bench: postgres or mysql")
		case len(args) > 1:
			return usagef("expected one of postgres or mysql, got %d arguments: %s", len(args), strings.Join(args, " "))
		case args[0] != "postgres" && args[0] != "mysql":
			return usagef("cannot bench %q; use postgres or mysql", args[0])
		case o.Rows < 10:
			return usagef("--rows must be at least 10, got %d", o.Rows)
		case o.Rate < 1:
			return usagef("--rate must be at least 1, got %d", o.Rate)
		case o.Duration < 100*time.Millisecond:
			return usagef("--duration must be at least 100ms, got %s", o.Duration)
		}
		if r.h.Bench == nil {
			return missingHandler("bench")
		}
		o.Target = args[0]
		o.CommandLine = commandLine(r.args)
		o.Out, o.Progress = r.env.Stdout, r.env.Stderr
		return r.h.Bench(ctx, o)
	}
}

// commandLine is args as a shell command, quoted where needed.
func commandLine(args []string) string {
	parts := []string{"dualwrite"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}!#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// idSelection reads retry and discard's (--all | ID...) arguments.
func idSelection(all bool, args []string) (name string, ids []int64, err error) {
	if len(args) == 0 {
		return "", nil, usagef("missing the map NAME")
	}
	name, rest := args[0], args[1:]
	switch {
	case all && len(rest) > 0:
		return "", nil, usagef("give --all or error IDs, not both")
	case !all && len(rest) == 0:
		return "", nil, usagef("give the error IDs to act on, or --all")
	}
	for _, s := range rest {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return "", nil, usagef("%q is not an error ID; IDs are the numbers `dualwrite maps errors %s --catch-up` lists", s, name)
		}
		ids = append(ids, id)
	}
	return name, ids, nil
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

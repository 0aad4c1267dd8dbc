package cli

import (
	"flag"
	"io"
	"log/slog"
	"strings"
)

// Logging is how the engine's log is written: --log-format and
// --log-level, given before the command or to serve and demo.
type Logging struct {
	Format string // "text" (default) or "json"
	Level  string // "debug", "info" (default), "warn" or "error"
}

// Logger returns the logger the options describe, writing to w.
func (l Logging) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if l.Level != "" {
		if err := level.UnmarshalText([]byte(l.Level)); err != nil {
			return nil, usagef("--log-level %q is not a level; use debug, info, warn or error", l.Level)
		}
	}
	o := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usagef("--log-format %q is not a format; use text or json", l.Format)
}

// loggingFlags adds --log-format and --log-level to the global flag set
// and to serve and demo; all set the runner's Logging.
func (r *runner) loggingFlags(fs *flag.FlagSet) {
	fs.StringVar(&r.logging.Format, "log-format", r.logging.Format, "log `FORMAT`: text or json (env DUALWRITE_LOG_FORMAT)")
	fs.StringVar(&r.logging.Level, "log-level", r.logging.Level, "log `LEVEL`: debug, info, warn or error (env DUALWRITE_LOG_LEVEL)")
}

// logger builds the runner's logger on stderr.
func (r *runner) logger() (*slog.Logger, error) { return r.logging.Logger(r.env.Stderr) }

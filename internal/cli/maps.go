package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/wire"
)

// progressWidth is the progress bar's width in cells.
const progressWidth = 30

func setupMapsList(r *runner, fs *flag.FlagSet) action {
	connect := r.connectFlags(fs)
	output := outputFlag(fs, "table", "json")
	return func(ctx context.Context, args []string) error {
		asJSON, err := output()
		if err == nil {
			err = noArgs(args)
		}
		if err != nil {
			return err
		}
		c, err := connect()
		if err != nil {
			return err
		}
		ms, err := c.maps(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			if ms == nil {
				ms = []wire.MapView{}
			}
			return writeJSON(r.env.Stdout, wire.MapList{Maps: ms})
		}
		return writeMapTable(r.env.Stdout, ms)
	}
}

// mapCommand is the common start of the commands on one map: output
// format, the NAME argument and the client.
func (r *runner) mapCommand(fs *flag.FlagSet, formats ...string) func(args []string) (c *client, name string, asJSON bool, err error) {
	connect := r.connectFlags(fs)
	output := outputFlag(fs, formats...)
	return func(args []string) (*client, string, bool, error) {
		asJSON, err := output()
		if err != nil {
			return nil, "", false, err
		}
		name, err := oneName(args)
		if err != nil {
			return nil, "", false, err
		}
		c, err := connect()
		return c, name, asJSON, err
	}
}

func setupMapsShow(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "text", "json")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		m, err := c.mapView(ctx, name)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, m)
		}
		return writeMapDetail(r.env.Stdout, m)
	}
}

// writeAction prints the answer to run, pause or stop: the map's new
// status and the related maps acted on or recommended.
func writeAction(w io.Writer, res wire.ActionResult, recommend string) {
	fmt.Fprintf(w, "%s: %s\n", res.Map, res.Status)
	switch {
	case len(res.Acted) > 0:
		fmt.Fprintf(w, "acted on, in order: %s\n", strings.Join(res.Acted, ", "))
	case len(res.Related) > 0:
		fmt.Fprintf(w, "recommended: %s: %s\n", recommend, strings.Join(res.Related, ", "))
	}
}

// RunWaitResult is the JSON output of `maps run --wait`: the answer to
// the action and the map once it left Initializing or Resuming.
type RunWaitResult struct {
	Result wire.ActionResult `json:"result"`
	Map    wire.MapView      `json:"map"`
}

func setupMapsRun(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "text", "json")
	var o wire.RunOptions
	fs.BoolVar(&o.WithRelated, "with-related", false, "also run, first, the maps this map depends on that are not running")
	fs.BoolVar(&o.SkipInitialSync, "skip-initial-sync", false, "start live sync without copying existing rows")
	fs.StringVar(&o.Master, "master", "", "the `SIDE` whose rows win in the initial sync, left or right (default: the map's)")
	wait := fs.Bool("wait", false, "wait until the initial sync or catch-up ends, showing progress on stderr")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		res, err := c.run(ctx, name, o)
		if err != nil {
			return err
		}
		if !*wait {
			if asJSON {
				return writeJSON(r.env.Stdout, res)
			}
			writeAction(r.env.Stdout, res, "run these first or add --with-related")
			return nil
		}
		if !asJSON {
			writeAction(r.env.Stdout, res, "run these first or add --with-related")
		}
		m, err := r.wait(ctx, c, name)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, RunWaitResult{Result: res, Map: m})
		}
		fmt.Fprintf(r.env.Stdout, "%s: %s\n", m.Name, m.Status)
		if m.InitErrors > 0 {
			fmt.Fprintf(r.env.Stdout, "%s failed in the initial sync; see `dualwrite maps errors %s`\n", plural(m.InitErrors, "row", "rows"), m.Name)
		}
		return nil
	}
}

// wait polls the map until it leaves Initializing and Resuming, drawing
// progress on stderr: a bar redrawn in place on a terminal, a line per
// poll otherwise.
func (r *runner) wait(ctx context.Context, c *client, name string) (wire.MapView, error) {
	tick := time.NewTicker(r.env.pollEvery)
	defer tick.Stop()
	started := time.Now()
	firstDone := int64(-1)
	drawn := false
	endLine := func() {
		if drawn && r.env.IsTerminal {
			fmt.Fprintln(r.env.Stderr)
		}
	}
	for {
		m, err := c.mapView(ctx, name)
		if err != nil {
			endLine()
			if ctx.Err() != nil {
				return m, fmt.Errorf("stopped waiting for map %s (it carries on): %w", name, ctx.Err())
			}
			return m, err
		}
		if m.Status != wire.Initializing && m.Status != wire.Resuming {
			endLine()
			return m, nil
		}
		line := fmt.Sprintf("%s: Resuming, %s queued", m.Name, plural(m.QueueDepth, "change", "changes"))
		if m.Status == wire.Initializing {
			if firstDone < 0 {
				firstDone = m.InitRowsDone
			}
			rate := 0.0
			if el := time.Since(started).Seconds(); el > 0 && m.InitRowsDone > firstDone {
				rate = float64(m.InitRowsDone-firstDone) / el
			}
			line = fmt.Sprintf("%s: Initializing %s", m.Name, renderProgress(m.InitRowsDone, m.InitRowsTotal, rate, progressWidth))
		}
		if r.env.IsTerminal {
			fmt.Fprintf(r.env.Stderr, "\r%s\x1b[K", line) // \x1b[K clears what a longer line left
		} else {
			fmt.Fprintln(r.env.Stderr, line)
		}
		drawn = true
		select {
		case <-ctx.Done():
			endLine()
			return m, fmt.Errorf("stopped waiting for map %s (it carries on): %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

func setupMapsPause(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "text", "json")
	withRelated := fs.Bool("with-related", false, "also pause the related maps")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		res, err := c.pause(ctx, name, *withRelated)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, res)
		}
		writeAction(r.env.Stdout, res, "pause these too or add --with-related")
		return nil
	}
}

func setupMapsStop(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "text", "json")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		res, err := c.stop(ctx, name)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, res)
		}
		writeAction(r.env.Stdout, res, "related maps")
		return nil
	}
}

func setupMapsErrors(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "table", "json")
	catchUp := fs.Bool("catch-up", false, "list catch-up errors instead of initial sync errors")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		limit := topErrors
		if asJSON {
			limit = 0 // all
		}
		l, err := c.errors(ctx, name, *catchUp, limit)
		if err != nil {
			return err
		}
		if asJSON {
			if l.Errors == nil {
				l.Errors = []wire.RowError{}
			}
			return writeJSON(r.env.Stdout, l)
		}
		if l.Total == 0 {
			kind := "initial sync"
			if *catchUp {
				kind = "catch-up"
			}
			_, err := fmt.Fprintf(r.env.Stdout, "no %s errors for map %s\n", kind, name)
			return err
		}
		return writeErrorTable(r.env.Stdout, l.Errors, l.Total, *catchUp)
	}
}

func writeRetry(w io.Writer, name, what string, res wire.RetryResult, hint string) {
	fmt.Fprintf(w, "%s: retried %s: %d succeeded, %d failed\n", name, plural(int64(res.Retried), what, what+"s"), res.Succeeded, res.Failed)
	if res.Failed > 0 {
		fmt.Fprintf(w, "see `%s`\n", hint)
	}
}

func setupMapsRerun(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "text", "json")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		res, err := c.rerun(ctx, name)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, res)
		}
		writeRetry(r.env.Stdout, name, "errored row", res, "dualwrite maps errors "+name)
		return nil
	}
}

// selectionCommand is the common start of retry and discard.
func (r *runner) selectionCommand(fs *flag.FlagSet) func(args []string) (*client, string, wire.Selection, bool, error) {
	connect := r.connectFlags(fs)
	output := outputFlag(fs, "text", "json")
	all := fs.Bool("all", false, "act on every catch-up error of the map")
	return func(args []string) (*client, string, wire.Selection, bool, error) {
		asJSON, err := output()
		if err != nil {
			return nil, "", wire.Selection{}, false, err
		}
		name, ids, err := idSelection(*all, args)
		if err != nil {
			return nil, "", wire.Selection{}, false, err
		}
		c, err := connect()
		return c, name, wire.Selection{IDs: ids, All: *all}, asJSON, err
	}
}

func setupMapsRetry(r *runner, fs *flag.FlagSet) action {
	start := r.selectionCommand(fs)
	return func(ctx context.Context, args []string) error {
		c, name, sel, asJSON, err := start(args)
		if err != nil {
			return err
		}
		res, err := c.retry(ctx, name, sel)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, res)
		}
		writeRetry(r.env.Stdout, name, "catch-up error", res, "dualwrite maps errors "+name+" --catch-up")
		return nil
	}
}

func setupMapsDiscard(r *runner, fs *flag.FlagSet) action {
	start := r.selectionCommand(fs)
	return func(ctx context.Context, args []string) error {
		c, name, sel, asJSON, err := start(args)
		if err != nil {
			return err
		}
		res, err := c.discard(ctx, name, sel)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(r.env.Stdout, res)
		}
		_, err = fmt.Fprintf(r.env.Stdout, "%s: discarded %s\n", name, plural(int64(res.Discarded), "catch-up error", "catch-up errors"))
		return err
	}
}

func setupMapsLog(r *runner, fs *flag.FlagSet) action {
	start := r.mapCommand(fs, "table", "json")
	limit := fs.Int("limit", 20, "show at most `N` entries, newest first")
	return func(ctx context.Context, args []string) error {
		c, name, asJSON, err := start(args)
		if err != nil {
			return err
		}
		if *limit < 1 || *limit > 10000 {
			return usagef("--limit must be from 1 to 10000, got %d", *limit)
		}
		acts, err := c.activity(ctx, name, *limit)
		if err != nil {
			return err
		}
		if asJSON {
			if acts == nil {
				acts = []wire.Activity{}
			}
			return writeJSON(r.env.Stdout, wire.ActivityList{Activity: acts})
		}
		return writeActivityTable(r.env.Stdout, acts)
	}
}

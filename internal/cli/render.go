package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dualwrite/dualwrite/internal/wire"
)

// topErrors is how many errors the errors table shows before pointing at
// --output json.
const topErrors = 5

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// formatTime shows times in UTC, so output is the same wherever it runs.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func formatAge(sec float64) string {
	return (time.Duration(sec * float64(time.Second))).Round(time.Second).String()
}

func formatQueue(m wire.MapView) string {
	if m.QueueDepth == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%s)", m.QueueDepth, formatAge(m.QueueAgeSec))
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(min(done, total) * 100 / total)
}

func formatStatus(m wire.MapView) string {
	s := string(m.Status)
	if m.Status == wire.Initializing && m.InitRowsTotal > 0 {
		s += fmt.Sprintf(" %d%%", percent(m.InitRowsDone, m.InitRowsTotal))
	}
	if m.StartFailures > 0 {
		s += " (" + plural(int64(m.StartFailures), "failed start", "failed starts") + ")"
	}
	if len(m.Problems) > 0 {
		s += " (" + plural(int64(len(m.Problems)), "problem", "problems") + ")"
	}
	if c := m.Condition; c != nil {
		// Never a bare "Running" while the map does not sync.
		s += fmt.Sprintf(", %s %s", strings.ToUpper(c.Kind), c.Code)
	}
	return s
}

// formatCondition is the detail line of a stall or an engine stop.
func formatCondition(c *wire.Condition) string {
	what := "STALLED"
	if c.Kind == wire.ConditionStopped {
		what = "STOPPED by the engine"
	}
	where := ""
	if c.Side != "" {
		where = " on " + c.Side
	}
	return fmt.Sprintf("%s%s since %s: %s %s", what, where, formatTime(c.Since), c.Code, c.Message)
}

func writeMapTable(w io.Writer, ms []wire.MapView) error {
	if len(ms) == 0 {
		_, err := fmt.Fprintln(w, "no maps are configured")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSTATUS\tLAST SYNC\tINIT ERRORS\tCATCH-UP ERRORS\tQUEUE\tLAG")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", m.Name, formatStatus(m), formatTime(m.LastSync),
			m.InitErrors, m.CatchUpErrors, formatQueue(m), formatLag(m.Lag))
	}
	return tw.Flush()
}

func joinOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}

func writeMapDetail(w io.Writer, m wire.MapView) error {
	tw := newTable(w)
	actions := make([]string, len(m.Actions))
	for i, a := range m.Actions {
		actions[i] = string(a)
	}
	fmt.Fprintf(tw, "Name:\t%s\n", m.Name)
	fmt.Fprintf(tw, "Tables:\t%s <-> %s\n", m.Left, m.Right)
	fmt.Fprintf(tw, "Status:\t%s\n", m.Status)
	if m.Condition != nil {
		fmt.Fprintf(tw, "Condition:\t%s\n", formatCondition(m.Condition))
	}
	fmt.Fprintf(tw, "Actions:\t%s\n", joinOr(actions, "-"))
	fmt.Fprintf(tw, "Master:\t%s\n", m.Master)
	fmt.Fprintf(tw, "Depends on:\t%s\n", joinOr(m.DependsOn, "-"))
	fmt.Fprintf(tw, "Last sync:\t%s\n", formatTime(m.LastSync))
	fmt.Fprintf(tw, "Initial sync:\t%d/%d rows (%d%%), %d errors\n", m.InitRowsDone, m.InitRowsTotal,
		percent(m.InitRowsDone, m.InitRowsTotal), m.InitErrors)
	fmt.Fprintf(tw, "Catch-up errors:\t%d\n", m.CatchUpErrors)
	if m.StartFailures > 0 {
		fmt.Fprintf(tw, "Failed starts:\t%d in a row; last: %s\n", m.StartFailures, m.LastStartError)
	}
	if m.QueueDepth > 0 {
		fmt.Fprintf(tw, "Queue:\t%d changes, %d bytes, oldest %s\n", m.QueueDepth, m.QueueBytes, formatAge(m.QueueAgeSec))
	} else {
		fmt.Fprintf(tw, "Queue:\tempty\n")
	}
	var applied []string
	for _, dir := range slices.Sorted(maps.Keys(m.Applied)) {
		applied = append(applied, fmt.Sprintf("%s %d", dir, m.Applied[dir]))
	}
	fmt.Fprintf(tw, "Applied:\t%s\n", joinOr(applied, "-"))
	for _, l := range m.Lag {
		fmt.Fprintf(tw, "Lag (%s):\t%d bytes, %.1fs, %d bytes of log retained\n", l.Side, l.Bytes, l.Seconds, l.RetainedLog)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(m.Problems) > 0 {
		fmt.Fprintln(w, "Problems:")
		for _, p := range m.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	return nil
}

// writeErrorTable shows the first topErrors of errs and how many more
// there are in total.
func writeErrorTable(w io.Writer, errs []wire.RowError, total int, catchUp bool) error {
	tw := newTable(w)
	header := "ID\tTIME\tDIRECTION\tKEY\tCODE\tMESSAGE"
	if catchUp {
		header += "\tCHANGES"
	}
	fmt.Fprintln(tw, header)
	for _, e := range errs[:min(len(errs), topErrors)] {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s", e.ID, formatTime(e.Time), e.Direction, keyText(e), e.Code, e.Message)
		if catchUp {
			fmt.Fprintf(tw, "\t%d", e.Changes)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more := total - min(len(errs), topErrors); more > 0 {
		_, err := fmt.Fprintf(w, "%d more; use --output json for all\n", more)
		return err
	}
	return nil
}

func writeActivityTable(w io.Writer, acts []wire.Activity) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tACTOR\tKIND\tMESSAGE")
	for _, a := range acts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", formatTime(a.Time), a.Actor, a.Kind, a.Message)
	}
	return tw.Flush()
}

// renderProgress draws an initial sync's progress as one line: a bar of
// width cells, rows done of total, percent, rate and the estimated time
// left. rate is in rows per second; 0 means not known yet.
func renderProgress(done, total int64, rate float64, width int) string {
	width = max(width, 1)
	done = max(done, 0)
	filled := 0
	pct := "  ?%"
	if total > 0 {
		done = min(done, total)
		filled = int(done * int64(width) / total)
		pct = fmt.Sprintf("%3d%%", percent(done, total))
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	if filled > 0 && filled < width {
		bar = strings.Repeat("=", filled-1) + ">" + strings.Repeat(" ", width-filled)
	}
	eta := "-"
	switch {
	case total > 0 && done >= total:
		eta = "0s"
	case rate > 0 && total > 0:
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s] %d/%d rows %s %.0f rows/s ETA %s", bar, done, total, pct, rate, eta)
}

// formatLag shows the largest capture lag of the map's sides, with the log
// the source retains for it: "1.2s 4.0 MiB", "-" when no side reports lag.
func formatLag(lags []wire.SideLag) string {
	if len(lags) == 0 {
		return "-"
	}
	worst := lags[0]
	for _, l := range lags[1:] {
		if l.Seconds > worst.Seconds || (l.Seconds == worst.Seconds && l.RetainedLog > worst.RetainedLog) {
			worst = l
		}
	}
	return fmt.Sprintf("%.1fs %s", worst.Seconds, formatBytes(worst.RetainedLog))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// keyText is the error's key as people read it ("usmf / C00012"), from an
// older server's raw key when it sends no key_text.
func keyText(e wire.RowError) string {
	if e.KeyText != "" {
		return e.KeyText
	}
	return wire.KeyText(e.Key)
}

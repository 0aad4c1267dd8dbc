package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Units of the figures.
const (
	unitRowsPerSec = "rows/s"
	unitMillis     = "ms"
	unitMiB        = "MiB"
)

// measure is one figure of dualwrite or of its baseline.
type measure struct {
	value float64
	unit  string
	rows  int64 // rows the figure is about
}

// figure is one line of the report: dualwrite's measure and, when there
// is one, the baseline's, with their ratio.
type figure struct {
	name  string
	dw    measure
	base  *measure
	ratio bool // print dw / base
}

// report is what the run prints: facts about the run and the machine,
// then the figures and what the baselines are.
type report struct {
	title   string
	facts   [][2]string
	figures []figure
	notes   []string
}

func newReport(o Options) *report {
	r := &report{title: "dualwrite bench " + o.Target}
	r.fact("command", o.CommandLine)
	r.fact("date", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	r.fact("machine", machine())
	r.fact("go", runtime.Version())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			// Other work on the machine moves the figures; say how much there was.
			r.fact("load", "load average "+strings.Join(f[:3], " ")+" at the start")
		}
	}
	r.fact("settings", fmt.Sprintf("rows %d (memory also at %d), rate %d/s, duration %s per live phase, writers %d paced / %d at saturation",
		o.Rows, max(o.Rows/10, 1), o.Rate, o.Duration, pacedWriters, saturationWriters))
	return r
}

func (r *report) fact(name, value string) {
	for i := range r.facts {
		if r.facts[i][0] == name {
			r.facts[i][1] = value
			return
		}
	}
	r.facts = append(r.facts, [2]string{name, value})
}

func (r *report) add(f figure) { r.figures = append(r.figures, f) }

func (r *report) note(s string) { r.notes = append(r.notes, s) }

func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "%s\n\n", r.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range r.facts {
		fmt.Fprintf(tw, "%s\t%s\n", f[0], f[1])
	}
	tw.Flush()
	if len(r.figures) > 0 {
		fmt.Fprintln(w)
		writeTable(w, r.figureCells())
	}
	if len(r.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.notes {
			fmt.Fprintf(w, "%s\n", n)
		}
	}
}

// figureCells are the figure table's cells, the header first.
func (r *report) figureCells() [][]string {
	cells := [][]string{{"FIGURE", "DUALWRITE", "ROWS", "BASELINE", "ROWS", "RATIO"}}
	for _, f := range r.figures {
		base, baseRows, ratio := "-", "-", "-"
		if f.base != nil {
			base, baseRows = f.base.String(), strconv.FormatInt(f.base.rows, 10)
			if f.ratio && f.base.value > 0 {
				ratio = fmt.Sprintf("%.2f", f.dw.value/f.base.value)
			}
		}
		cells = append(cells, []string{f.name, f.dw.String(), strconv.FormatInt(f.dw.rows, 10), base, baseRows, ratio})
	}
	return cells
}

// writeTable writes rows of cells in aligned columns: the first column
// left-aligned, the figures right-aligned.
func writeTable(w io.Writer, rows [][]string) {
	var width []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-len(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

func (m measure) String() string {
	switch m.unit {
	case unitRowsPerSec:
		return thousands(int64(m.value+0.5)) + " " + m.unit
	case unitMillis:
		if m.value < 10 {
			return fmt.Sprintf("%.2f %s", m.value, m.unit)
		}
		return fmt.Sprintf("%.1f %s", m.value, m.unit)
	}
	return fmt.Sprintf("%.1f %s", m.value, m.unit)
}

// thousands writes n with a comma every three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// rate is rows per second over d.
func rate(rows int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(rows) / d.Seconds()
}

// machine describes the machine: OS, cores, CPU model and memory.
func machine() string {
	s := fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if cpu := procField("/proc/cpuinfo", "model name"); cpu != "" {
		s += " (" + strings.Join(strings.Fields(cpu), " ") + ")"
	}
	if mem := procField("/proc/meminfo", "MemTotal"); mem != "" {
		if kb, err := strconv.ParseInt(strings.TrimSuffix(mem, " kB"), 10, 64); err == nil {
			s += fmt.Sprintf(", %.1f GiB memory", float64(kb)/(1<<20))
		}
	}
	return s
}

// procField returns the value of the first "name: value" line of a /proc
// file, or "" when it has none.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

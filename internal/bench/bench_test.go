package bench_test

import (
	"bytes"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

const (
	pgAdmin    = "postgres://postgres@127.0.0.1:5432/postgres"
	mysqlAdmin = "root@tcp(127.0.0.1:3306)/"
)

// TestBenchCommand runs `dualwrite bench postgres` and `dualwrite bench
// mysql` end to end on small numbers, as a user runs them (the engine is
// the built binary's own `serve`), and checks that every figure is
// reported with the right row counts and that the run leaves nothing
// behind. It asserts no speed: the figures only have to be there.
func TestBenchCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dualwrite")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/dualwrite")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build dualwrite: %v\n%s", err, out)
	}
	const rows, rate = 2000, 200
	const durationArg, fixedRows = "500ms", 100 // rate × duration
	args := []string{"--rows", strconv.Itoa(rows), "--rate", strconv.Itoa(rate), "--duration", durationArg}

	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		figs, id := runBench(t, bin, append([]string{"bench", "postgres"}, args...))
		wantFigure(t, figs, "initial sync pg->pg", rows, rows, true)
		wantFigure(t, figs, "initial sync pg->pg, 1/10 size", rows/10, 0, false)
		for _, phase := range []string{"live 200/s pg->pg", "live saturation pg->pg"} {
			n := -1
			if !strings.Contains(phase, "saturation") {
				n = fixedRows
			}
			wantFigure(t, figs, phase+" offered", n, n, false)
			for _, m := range []string{"throughput", "latency p50", "latency p99"} {
				wantFigure(t, figs, phase+" "+m, n, n, true)
			}
		}
		wantFigure(t, figs, "memory initial sync 200 rows", rows/10, 0, false)
		wantFigure(t, figs, "memory initial sync 2000 rows", rows, rows/10, true)
		wantFigure(t, figs, "memory live sync", -1, 0, false)
		// The map with three lookups, next to the flat table; the
		// catch-up queues min(rows, 100000) rows.
		wantFigure(t, figs, "initial sync 3 lookups pg->pg", rows, rows, true)
		wantFigure(t, figs, "catch-up replay pg->pg", rows, 0, false)
		wantFigure(t, figs, "catch-up replay 3 lookups pg->pg", rows, rows, true)
		wantFigure(t, figs, "memory initial sync 3 lookups", rows, rows, true)
		wantFigure(t, figs, "memory catch-up replay", rows, 0, false)
		wantFigure(t, figs, "memory catch-up replay 3 lookups", rows, rows, true)
		wantCleanedUp(t, id, false)
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		figs, id := runBench(t, bin, append([]string{"bench", "mysql"}, args...))
		wantFigure(t, figs, "initial sync pg->mariadb", rows, rows, true)
		wantFigure(t, figs, "initial sync mariadb->pg", rows, rows, true)
		for _, phase := range []string{"live 200/s pg->mariadb", "live saturation pg->mariadb", "live 200/s mariadb->pg", "live saturation mariadb->pg"} {
			n := -1
			if !strings.Contains(phase, "saturation") {
				n = fixedRows
			}
			for _, m := range []string{"offered", "throughput", "latency p50", "latency p99"} {
				wantFigure(t, figs, phase+" "+m, n, 0, false)
			}
		}
		wantFigure(t, figs, "memory initial sync pg->mariadb", rows, 0, false)
		wantFigure(t, figs, "memory initial sync mariadb->pg", rows, 0, false)
		wantFigure(t, figs, "memory live sync", -1, 0, false)
		wantCleanedUp(t, id, true)
	})
}

// figureLine is one parsed line of the report's figure table.
type figureLine struct {
	dw, dwRows, base, baseRows, ratio string
}

var runID = regexp.MustCompile(`dw_bench_([0-9a-f]{8})_`)

// runBench runs the command and returns the report's figures by name and
// the run's id.
func runBench(t *testing.T, bin string, args []string) (map[string]figureLine, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	t.Logf("%s\n%s", errb.String(), out.String())
	if err != nil {
		t.Fatalf("dualwrite %s: %v", strings.Join(args, " "), err)
	}
	m := runID.FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("the progress lines name no dw_bench_ database")
	}
	report := out.String()
	for _, want := range []string{"command   ", "dualwrite " + strings.Join(args, " "), "machine ", "go  ", "postgresql  15"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	figs := map[string]figureLine{}
	inTable := false
	for line := range strings.SplitSeq(report, "\n") {
		cells := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if len(cells) > 0 && cells[0] == "FIGURE" {
			inTable = true
			continue
		}
		if !inTable || strings.TrimSpace(line) == "" {
			inTable = inTable && strings.TrimSpace(line) != ""
			continue
		}
		if len(cells) != 6 {
			t.Fatalf("figure line with %d cells, want 6: %q", len(cells), line)
		}
		figs[cells[0]] = figureLine{cells[1], cells[2], cells[3], cells[4], cells[5]}
	}
	if len(figs) == 0 {
		t.Fatalf("no figure table in the report")
	}
	return figs, m[1]
}

// wantFigure checks a figure's row counts: dwRows and baseRows are the
// exact counts, -1 for any positive count, and baseRows 0 for no
// baseline. withRatio wants a ratio printed.
func wantFigure(t *testing.T, figs map[string]figureLine, name string, dwRows, baseRows int, withRatio bool) {
	t.Helper()
	f, ok := figs[name]
	if !ok {
		t.Errorf("no figure %q", name)
		return
	}
	count := func(what, cell string, want int) {
		n, err := strconv.Atoi(cell)
		switch {
		case want == 0 && cell != "-":
			t.Errorf("%s: %s rows %q, want none", name, what, cell)
		case want == 0:
		case err != nil || n <= 0:
			t.Errorf("%s: %s rows %q, want a positive count", name, what, cell)
		case want > 0 && n != want:
			t.Errorf("%s: %s rows %d, want %d", name, what, n, want)
		}
	}
	count("dualwrite", f.dwRows, dwRows)
	count("baseline", f.baseRows, baseRows)
	if !regexp.MustCompile(`^[0-9,.]+ (rows/s|ms|MiB)$`).MatchString(f.dw) {
		t.Errorf("%s: dualwrite figure %q is not a number with a unit", name, f.dw)
	}
	if withRatio {
		if _, err := strconv.ParseFloat(f.ratio, 64); err != nil {
			t.Errorf("%s: ratio %q is not a number", name, f.ratio)
		}
	}
}

// wantCleanedUp checks that the run dropped its databases, slots and
// replication origins.
func wantCleanedUp(t *testing.T, id string, mariaDB bool) {
	t.Helper()
	pg, err := sql.Open("pgx", pgAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var dbs, slots, origins int
	err = pg.QueryRow(`SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE $1),
		(SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE $2 OR slot_name LIKE $3),
		(SELECT count(*) FROM pg_replication_origin WHERE roname LIKE $2)`,
		"dw_bench_"+id+"%", "dw_bench"+id+"%", "dw_bench_"+id+"%").Scan(&dbs, &slots, &origins)
	if err != nil {
		t.Fatal(err)
	}
	if dbs+slots+origins != 0 {
		t.Errorf("the run left %d PostgreSQL databases, %d slots, %d replication origins behind", dbs, slots, origins)
	}
	if entries, _ := filepath.Glob(filepath.Join(os.TempDir(), "dualwrite-bench-*", "bench"+id+"*")); len(entries) > 0 {
		t.Errorf("the run left its engines' directories behind: %v", entries)
	}
	if !mariaDB {
		return
	}
	my, err := sql.Open("mysql", mysqlAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	var n int
	if err := my.QueryRow(`SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE ?`, "dw\\_bench\\_"+id+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the run left %d MariaDB databases behind", n)
	}
}

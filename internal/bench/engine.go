package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// side is one side of a link in the engine's configuration.
type side struct {
	name, driver, dsn string
}

// tableMap is one map of the configuration: the same table shape on both
// sides, keyed by id. The `arrived` column is left unmapped: its default
// stamps the moment the engine writes a row. A map with a body is written
// as that body instead (the lookups phase's maps).
type tableMap struct {
	name        string
	left, right string
	body        string // YAML lines after `- name:`, indented by four spaces
}

// mappedColumns are the columns every map syncs, both ways.
var mappedColumns = []string{"id", "name", "amount", "updated_at", "note", "sent"}

// engineConfig renders the YAML configuration of one engine run
// (docs/CONFIG.md).
func engineConfig(link string, left, right side, dataDir, listen string, maps []tableMap) string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "link:\n  name: %s\n", q(link))
	fmt.Fprintf(&b, "  left:  {name: %s, driver: %s, dsn: %s}\n", q(left.name), left.driver, q(left.dsn))
	fmt.Fprintf(&b, "  right: {name: %s, driver: %s, dsn: %s}\n", q(right.name), right.driver, q(right.dsn))
	fmt.Fprintf(&b, "engine:\n  data_dir: %s\n  listen: %s\nmaps:\n", q(dataDir), q(listen))
	for _, m := range maps {
		if m.body != "" {
			fmt.Fprintf(&b, "  - name: %s\n%s", m.name, m.body)
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    left: %s\n    right: %s\n    key: [{left: id, right: id}]\n    columns:\n", m.name, m.left, m.right)
		for _, c := range mappedColumns {
			fmt.Fprintf(&b, "      - {left: %s, right: %s}\n", c, c)
		}
	}
	return b.String()
}

// engineProc is one `dualwrite serve` child process.
type engineProc struct {
	cmd     *exec.Cmd
	api     string // http://127.0.0.1:port
	dataDir string // where the engine writes its access tokens
	token   string // the operator token, once the engine has written it
	logPath string
	version string
	maps    []string
	hc      *http.Client
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// mapView is the part of the API's MapView (docs/API.md) the bench reads.
type mapView struct {
	Name          string           `json:"name"`
	Status        string           `json:"status"`
	InitRowsDone  int64            `json:"init_rows_done"`
	InitRowsTotal int64            `json:"init_rows_total"`
	InitErrors    int64            `json:"init_errors"`
	CatchUpErrors int64            `json:"catch_up_errors"`
	QueueDepth    int64            `json:"queue_depth"`
	Applied       map[string]int64 `json:"applied"`
	Problems      []string         `json:"problems"`
}

// startEngine writes a configuration for the maps between left and right
// and starts `dualwrite serve` on it; the engine is stopped at the end of
// the run at the latest.
func (b *bench) startEngine(ctx context.Context, left, right side, maps []tableMap) (*engineProc, error) {
	b.engines++
	// One link and one data_dir for all the run's engines, one after the
	// other: they own the bench's databases in turn, as one engine
	// restarted with another configuration would (a second link on the
	// same databases is refused, docs/adr/20261204-ownership-and-source-identity.md).
	link := "bench" + b.id
	dir := filepath.Join(b.dir, fmt.Sprintf("%s%d", link, b.engines))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create engine directory: %w", err)
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "dualwrite.yaml")
	state := filepath.Join(b.dir, "state")
	cfg := engineConfig(link, left, right, state, listen, maps)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("write engine configuration: %w", err)
	}
	logPath := filepath.Join(dir, "engine.log")
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create engine log: %w", err)
	}
	p := &engineProc{api: "http://" + listen, dataDir: state, logPath: logPath, hc: &http.Client{Timeout: 30 * time.Second}, exited: make(chan struct{})}
	for _, m := range maps {
		p.maps = append(p.maps, m.name)
	}
	// Not CommandContext: an interrupted run still stops the maps (so the
	// slots are dropped) before the engine goes.
	p.cmd = exec.Command(b.o.Engine, "serve", "--config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		logs.Close()
		return nil, fmt.Errorf("start the engine %s: %w", b.o.Engine, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logs.Close()
		close(p.exited)
	}()
	b.deferUndo("stop the engine "+link, p.shutdown)
	if err := p.waitHealthy(ctx); err != nil {
		return nil, err
	}
	b.rep.fact("engine", fmt.Sprintf("%s serve (version %s), a child process per phase", b.o.Engine, p.version))
	b.logf("engine %s started (pid %d, API %s, log %s)", link, p.cmd.Process.Pid, p.api, logPath)
	return p, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for the engine's API: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

func (p *engineProc) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var h struct{ Status, Version string }
		err := p.call(ctx, http.MethodGet, "/api/v1/health", nil, &h)
		if err == nil && h.Status == "ok" {
			p.version = h.Version
			return nil
		}
		select {
		case <-p.exited:
			return p.failed("the engine exited at start (%v)", p.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p.failed("the engine did not answer on %s within 60s", p.api)
		}
	}
}

// failed is an error about the engine, with the end of its log.
func (p *engineProc) failed(format string, args ...any) error {
	return problem.New(problem.Internal, "%s; engine log %s ends with:\n%s", fmt.Sprintf(format, args...), p.logPath, logTail(p.logPath, 15))
}

func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "  (nothing)"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}

// call sends one API request; an API error comes back as a
// *problem.Error with the engine's code.
func (p *engineProc) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.api+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dualwrite-Actor", "bench")
	if p.token == "" {
		// An engine without access tokens (an older --engine) needs none.
		p.token, _, _ = auth.ReadToken(p.dataDir)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			return &problem.Error{Code: problem.Code(eb.Error.Code), Message: eb.Error.Message}
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (p *engineProc) view(ctx context.Context, name string) (mapView, error) {
	var v mapView
	err := p.call(ctx, http.MethodGet, "/api/v1/maps/"+url.PathEscape(name), nil, &v)
	return v, err
}

// run starts a map with its initial sync.
func (p *engineProc) run(ctx context.Context, name string) error {
	if err := p.call(ctx, http.MethodPost, "/api/v1/maps/"+url.PathEscape(name)+"/run", struct{}{}, nil); err != nil {
		return fmt.Errorf("run map %s: %w", name, err)
	}
	return nil
}

// pause pauses a map: its changes are queued until it runs again.
func (p *engineProc) pause(ctx context.Context, name string) error {
	if err := p.call(ctx, http.MethodPost, "/api/v1/maps/"+url.PathEscape(name)+"/pause", struct{}{}, nil); err != nil {
		return fmt.Errorf("pause map %s: %w", name, err)
	}
	return nil
}

// resetPeakMemory starts the engine's VmHWM afresh from its current
// resident size (Linux clear_refs), so a later peakMemory is the peak of
// what ran in between.
func (p *engineProc) resetPeakMemory() error {
	path := fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid)
	if err := os.WriteFile(path, []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the engine's peak memory (%s): %w", path, err)
	}
	return nil
}

// waitRunning polls the map until it is Running and returns its view.
// It fails when the map leaves the way to Running, when the engine exits,
// or when the initial sync makes no progress for stallTimeout.
func (p *engineProc) waitRunning(ctx context.Context, name string) (mapView, error) {
	var last int64 = -1
	lastMove := time.Now()
	for {
		v, err := p.view(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return v, ctx.Err()
			}
			return v, p.failed("read map %s: %v", name, err)
		}
		switch v.Status {
		case "Running":
			return v, nil
		case "Initializing", "Resuming":
		default:
			return v, p.failed("map %s went to %q during its initial sync (problems: %v)", name, v.Status, v.Problems)
		}
		if v.InitRowsDone != last {
			last, lastMove = v.InitRowsDone, time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return v, p.failed("map %s made no progress for %s at %d of %d rows", name, stallTimeout, v.InitRowsDone, v.InitRowsTotal)
		}
		select {
		case <-p.exited:
			return v, p.failed("the engine exited during the initial sync of %s (%v)", name, p.waitErr)
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// peakMemory is the engine's VmHWM (peak resident set size) in bytes.
func (p *engineProc) peakMemory() (int64, error) {
	v := procField(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid), "VmHWM")
	kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read VmHWM of the engine (pid %d): %q", p.cmd.Process.Pid, v)
	}
	return kb << 10, nil
}

// shutdown stops the engine's maps, so a PostgreSQL side drops its slot,
// publication and origins, then ends the process with SIGTERM (a soft
// stop) and waits for it. It is idempotent.
func (p *engineProc) shutdown(ctx context.Context) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	var errs []error
	for _, m := range p.maps {
		v, err := p.view(ctx, m)
		if err != nil || v.Status == "Not running" {
			continue
		}
		if err := p.call(ctx, http.MethodPost, "/api/v1/maps/"+url.PathEscape(m)+"/stop", nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("stop map %s: %w", m, err))
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		errs = append(errs, fmt.Errorf("the engine did not stop within 30s of SIGTERM and was killed; see %s", p.logPath))
	}
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		errs = append(errs, p.waitErr)
	}
	return errors.Join(errs...)
}

// stop shuts the engine down now rather than at the end of the run.
func (p *engineProc) stop(ctx context.Context) error {
	if err := p.shutdown(ctx); err != nil {
		return fmt.Errorf("stop the engine: %w", err)
	}
	return nil
}

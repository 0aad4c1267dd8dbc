package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Initial sync inside the slot's snapshot. When capture creates the slot,
// it exports a snapshot of the data as of the slot's consistent point and
// keeps the creating replication connection open and idle, which keeps
// the snapshot importable. The initial sync imports it into a REPEATABLE
// READ transaction and reads with COPY there: it sees every commit before
// the consistent point and none after, and capture streams exactly the
// commits after. The snapshot is given out once; unused, it is dropped
// after snapshotTTL so that it does not hold back vacuum.

// snapshotTTL is how long an exported snapshot waits for its reader.
const snapshotTTL = 10 * time.Minute

type exported struct {
	conn  *pgconn.PgConn // the replication connection that created the slot
	name  string
	timer *time.Timer
}

// keepSnapshot holds the snapshot exported by conn until it is imported,
// replaced or expires.
func (c *Connector) keepSnapshot(conn *pgconn.PgConn, name string) {
	x := &exported{conn: conn, name: name}
	c.snapMu.Lock()
	old := c.snap
	c.snap = x
	x.timer = time.AfterFunc(snapshotTTL, func() {
		c.snapMu.Lock()
		if c.snap == x {
			c.snap = nil
		}
		c.snapMu.Unlock()
		conn.Close(context.Background())
	})
	c.snapMu.Unlock()
	if old != nil {
		old.timer.Stop()
		old.conn.Close(context.Background())
	}
}

// dropSnapshot releases an unused exported snapshot.
func (c *Connector) dropSnapshot() {
	c.snapMu.Lock()
	x := c.snap
	c.snap = nil
	c.snapMu.Unlock()
	if x != nil {
		x.timer.Stop()
		x.conn.Close(context.Background())
	}
}

// OpenSnapshot imports the snapshot exported when capture created the
// slot. It returns nil when there is none.
func (c *Connector) OpenSnapshot(ctx context.Context) (connector.SnapshotReader, error) {
	c.snapMu.Lock()
	x := c.snap
	c.snap = nil
	c.snapMu.Unlock()
	if x == nil {
		return nil, nil
	}
	x.timer.Stop()
	// Once imported, the transaction keeps the snapshot by itself.
	defer x.conn.Close(context.Background())
	pc, err := c.connectSession(ctx)
	if err != nil {
		return nil, problem.Wrap(problem.ConnectionFailed, err, "cannot connect to PostgreSQL to read the initial sync snapshot")
	}
	if err := exec(ctx, pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL standard_conforming_strings = on; SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(x.name, "'", "''")+"'"); err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("import snapshot %s: %w", x.name, err)
	}
	c.log.Info("initial sync reads inside the slot's snapshot", "snapshot", x.name)
	return &snapshotReader{c: c, pc: pc}, nil
}

// snapshotReader scans with COPY inside an imported snapshot.
type snapshotReader struct {
	c  *Connector
	pc *pgconn.PgConn
	// buf is reused between chunks.
	buf bytes.Buffer
}

func (r *snapshotReader) Close() error {
	err := exec(context.Background(), r.pc, "COMMIT")
	r.pc.Close(context.Background())
	return err
}

// Scan reads one chunk with COPY (SELECT ...) TO STDOUT. COPY takes no
// parameters, so the bounds are inlined as typed literals.
func (r *snapshotReader) Scan(ctx context.Context, req connector.ScanRequest) ([]change.Row, error) {
	ti, err := r.c.info(ctx, req.Table)
	if err != nil {
		return nil, fmt.Errorf("scan %s in snapshot: %w", req.Table, err)
	}
	if err := checkColumns(ti, req.Columns, req.OrderBy, sortedKeys(req.Equal)); err != nil {
		return nil, fmt.Errorf("scan %s in snapshot: %w", req.Table, err)
	}
	cols := req.Columns
	if cols == nil {
		for _, col := range ti.desc.Columns {
			cols = append(cols, col.Name)
		}
	}
	a := &args{ti: ti, inline: true}
	q, err := selectSQL(ti, a, req, cols)
	if err != nil {
		return nil, fmt.Errorf("scan %s in snapshot: %w", req.Table, err)
	}
	if a.err != nil {
		return nil, fmt.Errorf("scan %s in snapshot: %w", req.Table, a.err)
	}
	r.buf.Reset()
	if _, err := r.pc.CopyTo(ctx, &r.buf, "COPY ("+q+") TO STDOUT"); err != nil {
		return nil, fmt.Errorf("scan %s in snapshot: %w", req.Table, err)
	}
	oids := make([]uint32, len(cols))
	for i, n := range cols {
		oids[i] = ti.base[n]
	}
	rows, err := parseCopyText(r.buf.Bytes(), cols, oids)
	if err != nil {
		return nil, fmt.Errorf("scan %s in snapshot: %w", req.Table, err)
	}
	return rows, nil
}

// literal renders v as a literal of column col's type.
func literal(ti *tableInfo, col string, v any) (string, error) {
	if v == nil {
		return "NULL", nil
	}
	b, err := pgrepl.EncodeText(v)
	if err != nil {
		return "NULL", err
	}
	typ := "text"
	if c, ok := ti.desc.Column(col); ok {
		typ = c.Type
	}
	return "'" + strings.ReplaceAll(string(b), "'", "''") + "'::" + typ, nil
}

// parseCopyText decodes COPY's text format: one line per row, fields
// separated by tabs, \N for NULL and backslash escapes.
func parseCopyText(data []byte, cols []string, oids []uint32) ([]change.Row, error) {
	var out []change.Row
	var field []byte
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		row := make(change.Row, len(cols))
		for i := range cols {
			var raw []byte
			if j := bytes.IndexByte(line, '\t'); j >= 0 && i < len(cols)-1 {
				raw, line = line[:j], line[j+1:]
			} else {
				raw, line = line, nil
			}
			if string(raw) == `\N` {
				row[cols[i]] = nil
				continue
			}
			field = pgrepl.UnescapeCopyText(field[:0], raw)
			v, err := pgrepl.DecodeText(oids[i], field)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", cols[i], err)
			}
			row[cols[i]] = v
		}
		out = append(out, row)
	}
	return out, nil
}

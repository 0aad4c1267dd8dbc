package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Check verifies the server settings and privileges capture needs, and
// that the tables exist.
func (c *Connector) Check(ctx context.Context, tables []string) []connector.Problem {
	var out []connector.Problem
	add := func(code problem.Code, format string, args ...any) {
		out = append(out, connector.Problem{Code: string(code), Message: fmt.Sprintf(format, args...)})
	}
	var logBin, format, image string
	err := c.db.QueryRowContext(ctx, "SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image").Scan(&logBin, &format, &image)
	if err != nil {
		add(problem.ConnectionFailed, "cannot read the binlog settings of %s: %v; check the connection", c.cfg.Addr, err)
		return out
	}
	const fix = "run scripts/setup-mariadb.sh, or set log_bin, binlog_format=ROW and binlog_row_image=FULL in the server configuration and restart the server"
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		add(problem.ServerSetting, "the binary log is off (log_bin=OFF) on %s; %s", c.cfg.Addr, fix)
	}
	if !strings.EqualFold(format, "ROW") {
		add(problem.ServerSetting, "binlog_format is %s on %s, capture needs ROW; %s", format, c.cfg.Addr, fix)
	}
	if !strings.EqualFold(image, "FULL") {
		add(problem.ServerSetting, "binlog_row_image is %s on %s, capture needs FULL; %s", image, c.cfg.Addr, fix)
	}
	if !c.mariaDB {
		// MySQL can log JSON updates as diffs, which capture cannot apply.
		var opts string
		if err := c.db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_row_value_options").Scan(&opts); err == nil && opts != "" {
			add(problem.ServerSetting, "binlog_row_value_options is %s on %s; capture needs whole JSON values: SET PERSIST binlog_row_value_options = ''", opts, c.cfg.Addr)
		}
	}
	grants, err := c.grants(ctx)
	if err != nil {
		add(problem.MissingPrivilege, "cannot read the grants of %s: %v; check them with SHOW GRANTS", c.cfg.User, err)
	} else {
		need := [][]string{{"REPLICATION SLAVE", "REPLICATION REPLICA"}}
		if c.mariaDB {
			need = append(need, []string{"BINLOG MONITOR", "REPLICATION CLIENT", "SUPER"})
		} else {
			need = append(need, []string{"REPLICATION CLIENT"})
		}
		for _, alts := range need {
			if !grants.has(alts...) {
				add(problem.MissingPrivilege, "the user %s lacks the %s privilege capture needs; run GRANT %s ON *.* TO the user",
					c.cfg.User, alts[0], alts[0])
			}
		}
	}
	for _, t := range tables {
		if _, err := c.describe(ctx, t); err != nil {
			add(problem.UnknownTable, "table %s: %v; create it or fix the map", t, err)
		}
	}
	return out
}

type grantSet []string

func (g grantSet) has(privs ...string) bool {
	for _, line := range g {
		u := strings.ToUpper(line)
		if !strings.Contains(u, " ON *.* ") {
			continue
		}
		if strings.Contains(u, "ALL PRIVILEGES") {
			return true
		}
		for _, p := range privs {
			if strings.Contains(u, p) {
				return true
			}
		}
	}
	return false
}

func (c *Connector) grants(ctx context.Context) (grantSet, error) {
	rows, err := c.db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out grantSet
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Lag reports how far the open capture is behind the server. Bytes is the
// log between the server's end and the last acknowledged transaction (or,
// when everything handed out is acknowledged, the last event read: the
// log after it may only hold other tables' changes). Seconds is the age of
// the oldest transaction handed out but not acknowledged, or else the age
// of the last event read when the reader is behind. RetainedLog is the
// binlog the server keeps (it keeps it by age, not for this replica).
func (c *Connector) Lag(ctx context.Context) (connector.Lag, error) {
	c.capMu.Lock()
	cp := c.capturer
	c.capMu.Unlock()
	if cp == nil {
		return connector.Lag{}, fmt.Errorf("lag of %s: no capture is running", c.cfg.Addr)
	}
	end, err := c.masterStatus(ctx)
	if err != nil {
		return connector.Lag{}, fmt.Errorf("lag: read the end of the binary log: %w", err)
	}
	logs, err := c.binaryLogs(ctx)
	if err != nil {
		return connector.Lag{}, fmt.Errorf("lag: list binary logs: %w", err)
	}
	cp.mu.Lock()
	from := cp.reader
	var oldest pending
	hasPending := len(cp.unacked) > 0
	if hasPending {
		from = cp.acked
		oldest = cp.unacked[0]
	}
	lastEvent := cp.lastEvent
	cp.mu.Unlock()
	var lag connector.Lag
	lag.Bytes = logDistance(logs, from, end)
	for _, l := range logs {
		lag.RetainedLog += l.size
	}
	now := c.now()
	switch {
	case hasPending:
		lag.Seconds = now.Sub(oldest.commitTime).Seconds()
	case lag.Bytes > 0 && !lastEvent.IsZero():
		lag.Seconds = now.Sub(lastEvent).Seconds()
	}
	if lag.Seconds < 0 {
		lag.Seconds = 0
	}
	return lag, nil
}

// logDistance is the number of log bytes from a to b.
func logDistance(logs []binaryLog, a, b binlogPos) int64 {
	if a.File == b.File {
		return max(int64(b.Offset)-int64(a.Offset), 0)
	}
	ai, _ := fileIndex(a.File)
	bi, _ := fileIndex(b.File)
	if ai > bi {
		return 0
	}
	var n int64
	for _, l := range logs {
		idx, _ := fileIndex(l.name)
		switch {
		case idx == ai:
			n += max(l.size-int64(a.Offset), 0)
		case idx > ai && idx < bi:
			n += l.size
		case idx == bi:
			n += int64(b.Offset)
		}
	}
	return n
}

package postgres

import (
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/connector"
)

// TestSessionSettingsWinOverTheDSN: a DSN (or PGTZ) that sets the time
// zone or the date style in another case must not reach the sessions
// whose text output the connector parses.
func TestSessionSettingsWinOverTheDSN(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.exec(t, `CREATE TABLE ev (id int PRIMARY KEY, at timestamptz, d date)`)
	env.exec(t, `INSERT INTO ev VALUES (1, '2024-03-31 01:30:00.25+00', '2024-02-29')`)
	c := env.openDSN(t, env.dsn+" timezone=Asia/Kolkata datestyle=German")
	want := time.Date(2024, 3, 31, 1, 30, 0, 250000000, time.UTC)
	// Many sessions: with both settings sent, either could win at random.
	for i := 0; i < 20; i++ {
		c.db.SetMaxIdleConns(0) // a new session each time
		rows, err := c.Scan(ctxT(t), connector.ScanRequest{Table: "ev", OrderBy: []string{"id"}})
		if err != nil {
			t.Fatalf("scan %d: %v", i, err)
		}
		at, ok := rows[0]["at"].(time.Time)
		if !ok || !at.Equal(want) {
			t.Fatalf("scan %d: at = %v, want %v", i, rows[0]["at"], want)
		}
		if d, ok := rows[0]["d"].(time.Time); !ok || d.Format("2006-01-02") != "2024-02-29" {
			t.Fatalf("scan %d: d = %v", i, rows[0]["d"])
		}
	}
}

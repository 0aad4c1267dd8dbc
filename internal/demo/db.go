package demo

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// openApp opens a side's database as "the application" the tour edits.
func openApp(driver, dsn string) (*sql.DB, error) {
	switch driver {
	case "sqlite":
		return sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	}
	return openServerApp(driver, dsn)
}

// seed creates the schema and the pre-existing rows, once: a directory
// that already holds the demo's databases is reused as it is.
func seed(ctx context.Context, db *sql.DB, driver, schema, rows string) error {
	for _, stmt := range statements(schema) {
		if _, err := db.ExecContext(ctx, translateDDL(driver, stmt)); err != nil {
			return fmt.Errorf("%w in: %s", err, stmt)
		}
	}
	var n int
	first := firstTable(schema)
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+first).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range statements(rows) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w in: %s", err, stmt)
		}
	}
	return nil
}

func statements(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstTable(schema string) string {
	const marker = "CREATE TABLE IF NOT EXISTS "
	i := strings.Index(schema, marker)
	rest := schema[i+len(marker):]
	return strings.Fields(rest)[0]
}

// ph is the first-style placeholder of the database: "?" or "$n".
func ph(db *sql.DB, n int) string {
	if isPostgres(db) {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

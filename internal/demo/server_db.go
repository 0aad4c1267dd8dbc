package demo

import (
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	_ "github.com/go-sql-driver/mysql" // MariaDB/MySQL for the demo databases
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL for the demo databases
)

func openServerApp(driver, dsn string) (*sql.DB, error) {
	switch driver {
	case "postgres":
		return sql.Open("pgx", dsn)
	case "mysql":
		return sql.Open("mysql", dsn)
	}
	return nil, fmt.Errorf("driver %q is not known; use sqlite, postgres or mysql", driver)
}

var (
	sqliteUUIDDefault = regexp.MustCompile(`DEFAULT \(lower\(hex\(randomblob\(16\)\)\)\)`)
	textType          = regexp.MustCompile(`\bTEXT\b`)
)

// translateDDL turns the demo's SQLite DDL into the server's dialect:
// generated UUIDs, and indexable text on MariaDB/MySQL.
func translateDDL(driver, stmt string) string {
	switch driver {
	case "postgres":
		return sqliteUUIDDefault.ReplaceAllString(stmt, "DEFAULT gen_random_uuid()")
	case "mysql":
		stmt = sqliteUUIDDefault.ReplaceAllString(stmt, "DEFAULT (UUID())")
		return textType.ReplaceAllString(stmt, "VARCHAR(255)")
	}
	return stmt
}

func isPostgres(db *sql.DB) bool {
	return strings.Contains(fmt.Sprintf("%T", db.Driver()), "stdlib")
}

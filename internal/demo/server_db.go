package demo

import (
	"database/sql"
	"fmt"
)

func openServerApp(driver, dsn string) (*sql.DB, error) {
	return nil, fmt.Errorf("driver %q is not available for the demo yet", driver)
}

func translateDDL(driver, stmt string) string { return stmt }

func isPostgres(db *sql.DB) bool { return false }

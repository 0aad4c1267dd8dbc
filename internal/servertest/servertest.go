// Package servertest decides what a test does when a server it needs
// (PostgreSQL, MariaDB, NATS, their binaries) is missing: in CI (CI=true)
// the test fails, so a suite can never pass without its servers; locally
// it is skipped, saying why.
package servertest

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in continuous integration (the CI
// environment variable is true, as CI services set it).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing ends the test because a server it needs is missing: a failure
// in CI, a skip elsewhere. The message says which server and why.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a required server is missing: "+format, args...)
	}
	t.Skipf("skipped (required server missing; set CI=true to make this a failure): "+format, args...)
}

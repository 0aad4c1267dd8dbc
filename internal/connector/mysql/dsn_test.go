package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// TestOpenRejectsATimeZoneInTheDSN: the engine fixes the session zone to
// UTC; a DSN asking for another would be overridden without a word.
func TestOpenRejectsATimeZoneInTheDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"root@tcp(127.0.0.1:3306)/test?loc=Local",
		"root@tcp(127.0.0.1:3306)/test?loc=Asia%2FTokyo",
		"root@tcp(127.0.0.1:3306)/test?time_zone=%27%2B09%3A00%27",
	} {
		_, err := Open(context.Background(), dsn, Options{})
		if problem.CodeOf(err) != problem.ConfigInvalid || !strings.Contains(err.Error(), "remove") {
			t.Errorf("Open(%s) = %v; want DW1002 saying what to remove", dsn, err)
		}
	}
}

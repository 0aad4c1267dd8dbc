package servertest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingFailsInCI runs a child test that calls Missing, with and
// without CI=true, and checks that it fails in CI and skips otherwise.
func TestMissingFailsInCI(t *testing.T) {
	if os.Getenv("DW_SERVERTEST_CHILD") == "1" {
		Missing(t, "no server at %s", "127.0.0.1:1")
		return
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "--- FAIL"},
		{"", false, "--- SKIP"},
		{"false", false, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingFailsInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "DW_SERVERTEST_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("CI=%q: failed=%v, want %v\n%s", tc.ci, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no server at 127.0.0.1:1") {
			t.Errorf("CI=%q: output lacks %q and the reason:\n%s", tc.ci, tc.want, out)
		}
	}
}

package problem

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryCodeIsDocumented keeps docs/ERRORS.md in step with the
// catalogue: every code declared in this package has a row there, and no
// two constants share a code.
func TestEveryCodeIsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/ERRORS.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^\s*(\w+)\s+Code\s*=\s*"(DW\d{4})"`)
	seen := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			name, code := m[1], m[2]
			if other, ok := seen[code]; ok {
				t.Errorf("%s and %s share %s", name, other, code)
			}
			seen[code] = name
			if !strings.Contains(string(doc), "| "+code+" |") {
				t.Errorf("%s (%s) has no row in docs/ERRORS.md", code, name)
			}
		}
	}
	if len(seen) < 30 {
		t.Fatalf("found only %d codes", len(seen))
	}
}

package demo_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/demo"
)

// TestDemoOnce runs the whole tour on two real SQLite files and requires
// both sides to end equal under every map.
func TestDemoOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := demo.Run(ctx, demo.Options{Dir: t.TempDir(), Once: true, Listen: "127.0.0.1:0", Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"Before: customers on both sides",
		"related maps recommended for customers, in dependency order: companies, currencies, customergroups",
		"customers conflict: key",
		"both sides converged",
		"queued while paused",
		"resumed: every queued change replayed in order",
		"After: customers on both sides",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The after table shows the paused edits replayed (A → B → C ends at C).
	after := text[strings.Index(text, "After: customer groups"):]
	if strings.Count(after, "Contoso C") != 2 {
		t.Errorf("after table does not show US-001 renamed on both sides:\n%s", after)
	}
	// Companies the D365 way: one account number in three companies, each
	// with its own group 10, and references that stay in their company.
	for _, want := range []string{
		`erp\s+gbsi\s+10\s+Wholesale UK`,
		`crm\s+demf\s+10\s+Großhandel`,
		`erp\s+gbsi\s+C-100\s+Litware Ltd\s+USD\s+gbsi/10`,
		`crm\s+demf\s+C-100\s+Litware GmbH\s+EUR\s+demf/20\s+demf/C-100`,
		`crm\s+usmf\s+C-100\s+Litware Inc\.\s+USD\s+usmf/10\s+usmf/C-100`,
	} {
		if !regexp.MustCompile(want).MatchString(after) {
			t.Errorf("after table lacks a row matching %s:\n%s", want, after)
		}
	}
	if strings.Contains(text, "false") {
		t.Errorf("a map ended unequal:\n%s", text)
	}
	if testing.Verbose() {
		t.Log(text)
	}
}

package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const badERP = `
CREATE TABLE custtable (dataareaid TEXT NOT NULL, accountnum TEXT NOT NULL, name TEXT NOT NULL, active BOOLEAN, created DATETIME, PRIMARY KEY (dataareaid, accountnum));
CREATE TABLE vendors (code TEXT, name TEXT);
CREATE TABLE currencies (code TEXT PRIMARY KEY);
`

const badCRM = `
CREATE TABLE account (accountid TEXT PRIMARY KEY, company TEXT NOT NULL, accountnumber TEXT NOT NULL, name TEXT, created DATETIME, mandatory TEXT NOT NULL, UNIQUE (company, accountnumber));
CREATE TABLE vendor (vendorid TEXT PRIMARY KEY, code TEXT, name TEXT);
CREATE TABLE currency (code TEXT PRIMARY KEY);
`

const badConfig = `link:
  name: bad
  left:  {name: erp, driver: sqlite, dsn: "%[1]s/erp.db"}
  right: {name: crm, driver: sqlite, dsn: "%[1]s/crm.db"}
engine:
  data_dir: "%[1]s/state"
maps:
  - name: customers
    left: custtable
    right: account
    depends_on: [vendors]
    key:
      - {left: dataareaid, right: company}
      - {left: accountnum, right: accountnumber}
    columns:
      - {left: dataareaid, right: company}
      - {left: accountnum, right: accountnumber}
      - {left: name, right: nosuchcolumn}
      - {left: active, right: created}
      - {right: name, direction: left_to_right, left_to_right: 'name +* 1'}
    filter:
      left: 'nosuchvariable == 1'
  - name: vendors
    left: vendors
    right: vendor
    depends_on: [customers]
    key: [{left: code, right: code}]
    columns:
      - {left: code, right: code}
      - {left: name, right: name}
  - name: ghosts
    left: ghost
    right: currency
    key: [{left: code, right: code}]
    columns:
      - {left: code, right: code}
`

// TestValidateListsEveryProblem runs `dualwrite validate` as a user does, on
// a configuration with many problems, and requires every one to be listed
// with its stable code, and a non-zero exit.
func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	erp := openDB(t, filepath.Join(dir, "erp.db"))
	crm := openDB(t, filepath.Join(dir, "crm.db"))
	mustExec(t, erp, badERP)
	mustExec(t, crm, badCRM)
	cfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(badConfig, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "validate", cfg, "--output", "json")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("validate exit: %v\n%s", err, out)
	}
	var res struct {
		Problems []struct {
			Code, Path, Message string
			Line                int
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var codes []string
	for _, p := range res.Problems {
		codes = append(codes, p.Code)
		if p.Message == "" {
			t.Errorf("problem without a message: %+v", p)
		}
	}
	for _, want := range []string{"DW1003", "DW1010", "DW1012", "DW1021", "DW1024", "DW1030", "DW1040"} {
		if !slices.Contains(codes, want) {
			t.Errorf("validate did not report %s; got %v\n%s", want, codes, out)
		}
	}

	// Human output: one line per problem with file, line and column.
	text, _ := exec.Command(binary, "validate", cfg).Output()
	if !strings.Contains(string(text), "bad.yaml:") || !strings.Contains(string(text), "problems") {
		t.Errorf("text output:\n%s", text)
	}

	// A side that cannot be reached is DW1000 with the driver's reason.
	unreachable := strings.Replace(fmt.Sprintf(badConfig, dir), "driver: sqlite, dsn: \""+dir+"/crm.db\"", "driver: sqlite, dsn: \"/nonexistent/dir/crm.db\"", 1)
	cfg2 := filepath.Join(dir, "unreachable.yaml")
	os.WriteFile(cfg2, []byte(unreachable), 0o644)
	out, _ = exec.Command(binary, "validate", cfg2, "--output", "json").Output()
	if !strings.Contains(string(out), "DW1000") {
		t.Errorf("unreachable side not reported as DW1000:\n%s", out)
	}

	// A malformed file: DW1001 with line and column.
	cfg3 := filepath.Join(dir, "syntax.yaml")
	os.WriteFile(cfg3, []byte("link:\n  name: x\n  lefft: {}\n"), 0o644)
	out, _ = exec.Command(binary, "validate", cfg3).Output()
	if !strings.Contains(string(out), "DW1001") || !strings.Contains(string(out), "syntax.yaml:3:") {
		t.Errorf("syntax error output:\n%s", out)
	}
}

// TestDemoBinaryOnce runs the README's demo command with --once: it exits 0
// only if both sides ended equal under every map.
func TestDemoBinaryOnce(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--once", "--dir", dir, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dualwrite demo --once: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Verification") {
		t.Fatalf("demo output:\n%s", out)
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaPath = "../../schema/dualwrite.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("dualwrite.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("dualwrite.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

// yamlToJSON converts a YAML file to the JSON value an editor's schema
// validator sees.
func yamlToJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	j, err := json.Marshal(jsonable(v))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		out := map[string]any{}
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	}
	return v
}

func TestSchemaAcceptsValidConfigs(t *testing.T) {
	t.Parallel()
	schema := compileSchema(t)
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	examples, _ := filepath.Glob("../../examples/*.yaml")
	files = append(files, examples...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			if err := schema.Validate(yamlToJSON(t, f)); err != nil {
				t.Errorf("schema rejects %s: %v", f, err)
			}
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if issues := c.Validate(); len(issues) > 0 {
				t.Errorf("Validate: %v", Issues(issues))
			}
		})
	}
}

func TestSchemaAndValidateRejectInvalidConfigs(t *testing.T) {
	t.Parallel()
	schema := compileSchema(t)
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			if err := schema.Validate(yamlToJSON(t, f)); err == nil {
				t.Errorf("schema accepts %s", f)
			}
			c, err := Load(f)
			if err == nil && len(c.Validate()) == 0 {
				t.Errorf("Load and Validate accept %s", f)
			}
		})
	}
}

// TestSchemaKnowsEveryField keeps the schema in step with the Go types: every
// yaml field of every struct is a property in the schema, and the schema
// has no property the Go types lack.
func TestSchemaKnowsEveryField(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	props := func(path ...string) map[string]any {
		var cur any = s
		for _, p := range path {
			cur = cur.(map[string]any)[p]
		}
		return cur.(map[string]any)["properties"].(map[string]any)
	}
	mapProps := props("$defs", "map")
	item := func(name string) map[string]any {
		return mapProps[name].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	}
	for _, tc := range []struct {
		v     any
		props map[string]any
	}{
		{Config{}, props()},
		{Link{}, props("properties", "link")},
		{Side{}, props("$defs", "side")},
		{Engine{}, props("properties", "engine")},
		{Map{}, mapProps},
		{KeyColumn{}, item("key")},
		{ColumnMap{}, item("columns")},
		{Lookup{}, item("lookups")},
		{Filter{}, mapProps["filter"].(map[string]any)["properties"].(map[string]any)},
		{AlertRule{}, props("$defs", "alert")},
		{Notify{}, props("properties", "notify")},
		{Webhook{}, props("properties", "notify")["webhooks"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)},
		{Email{}, props("properties", "notify")["email"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)},
	} {
		_, names, _ := yamlFields(reflectType(tc.v))
		for _, n := range names {
			if _, ok := tc.props[n]; !ok {
				t.Errorf("%T field %s is missing from the schema", tc.v, n)
			}
		}
		if len(names) != len(tc.props) {
			t.Errorf("%T has %d fields, the schema %d: %v", tc.v, len(names), len(tc.props), tc.props)
		}
	}
}

func reflectType(v any) reflect.Type { return reflect.TypeOf(v) }

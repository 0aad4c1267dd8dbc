package config

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Marshal writes the configuration as YAML that Parse reads back to the
// same configuration: unset fields are left out, value maps keep their
// order and an explicit null default is kept. With defaults applied it is
// the effective configuration, for `dualwrite config` style output.
func (c *Config) Marshal() ([]byte, error) {
	n := encodeValue(reflect.ValueOf(c).Elem(), false)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("marshal configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// flowTypes are written one per line in flow style, as in the examples.
var flowTypes = map[reflect.Type]bool{
	reflect.TypeOf(KeyColumn{}): true,
	reflect.TypeOf(ColumnMap{}): true,
	reflect.TypeOf(Lookup{}):    true,
}

// String formats the duration like time.Duration, without zero trailing
// units: "24h", "1h30m", "500ms".
func (d Duration) String() string {
	s := d.D().String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func scalarNode(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// encodeValue returns the node for v, or nil when v is unset. Items of
// lists of structs (keys, columns, lookups) are written in flow style,
// one per line, as in the examples.
func encodeValue(v reflect.Value, flow bool) *yaml.Node {
	switch {
	case v.Type() == durationType:
		if v.Int() == 0 {
			return nil
		}
		return scalarNode("!!str", Duration(v.Int()).String())
	case v.Type() == anyType:
		return encodeDefault(v)
	}
	switch v.Kind() {
	case reflect.Struct:
		return encodeStruct(v, flow)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return encodeValue(v.Elem(), flow)
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		if v.Type() == columnsType && v.Len() == 1 {
			return scalarNode("!!str", v.Index(0).String())
		}
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Type().Elem().Kind() == reflect.String {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			item := encodeValue(v.Index(i), flowTypes[v.Type().Elem()])
			if item == nil {
				item = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			}
			n.Content = append(n.Content, item)
		}
		return n
	case reflect.String:
		if v.Len() == 0 {
			return nil
		}
		return scalarNode("!!str", v.String())
	case reflect.Int, reflect.Int64:
		if v.Int() == 0 {
			return nil
		}
		return scalarNode("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Bool:
		// Reached through *bool only, where false is explicit.
		return scalarNode("!!bool", strconv.FormatBool(v.Bool()))
	}
	panic(fmt.Sprintf("config: no encoder for %s", v.Type()))
}

func encodeDefault(v reflect.Value) *yaml.Node {
	if v.IsNil() {
		return scalarNode("!!null", "null")
	}
	switch x := v.Interface().(type) {
	case bool:
		return scalarNode("!!bool", strconv.FormatBool(x))
	case int64:
		return scalarNode("!!int", strconv.FormatInt(x, 10))
	case int:
		return scalarNode("!!int", strconv.Itoa(x))
	case float64:
		return scalarNode("!!float", strconv.FormatFloat(x, 'g', -1, 64))
	default:
		return scalarNode("!!str", fmt.Sprint(x))
	}
}

func encodeStruct(v reflect.Value, flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if flow {
		n.Style = yaml.FlowStyle
	}
	add := func(key string, val *yaml.Node) {
		if val != nil {
			n.Content = append(n.Content, scalarNode("!!str", key), val)
		}
	}
	col, isColumn := v.Addr().Interface().(*ColumnMap)
	fields, _, _ := yamlFields(v.Type())
	order := make([]field, 0, len(fields))
	for _, f := range fields {
		order = append(order, f)
	}
	sort.Slice(order, func(a, b int) bool { return order[a].index < order[b].index })
	for _, f := range order {
		fv := v.Field(f.index)
		switch {
		case isColumn && f.name == "default":
			if col.HasDefault {
				add(f.name, encodeDefault(fv))
			}
		case isColumn && f.name == "value_map":
			add(f.name, encodeValueMap(col))
		case fv.Kind() == reflect.Bool:
			if fv.Bool() {
				add(f.name, scalarNode("!!bool", "true"))
			}
		default:
			add(f.name, encodeValue(fv, false))
		}
	}
	if len(n.Content) == 0 {
		return nil
	}
	return n
}

// encodeValueMap writes ValueMapPairs, or ValueMap sorted by key when the
// pairs were not filled (a configuration built in code).
func encodeValueMap(col *ColumnMap) *yaml.Node {
	pairs := col.ValueMapPairs
	if len(pairs) == 0 && len(col.ValueMap) > 0 {
		for k, v := range col.ValueMap {
			pairs = append(pairs, [2]string{k, v})
		}
		sort.Slice(pairs, func(a, b int) bool { return pairs[a][0] < pairs[b][0] })
	}
	if len(pairs) == 0 {
		return nil
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	for _, p := range pairs {
		n.Content = append(n.Content, scalarNode("!!str", p[0]), scalarNode("!!str", p[1]))
	}
	return n
}

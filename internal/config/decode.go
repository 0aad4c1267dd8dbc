package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// decoder turns a yaml.Node tree into the typed configuration. It walks the
// nodes itself instead of using yaml.Unmarshal so that every struct gets its
// Pos, every field's position is remembered for later messages, unknown
// fields and duplicate keys are reported with their line and column, and
// every problem in the file is reported, not only the first.
type decoder struct {
	file      string
	issues    Issues
	positions map[string]Pos
}

var (
	posType      = reflect.TypeOf(Pos{})
	durationType = reflect.TypeOf(Duration(0))
	anyType      = reflect.TypeOf((*any)(nil)).Elem()
	columnsType  = reflect.TypeOf(Columns(nil))
)

func nodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

func (d *decoder) issue(code problem.Code, path string, n *yaml.Node, format string, args ...any) {
	d.issues = append(d.issues, Issue{
		Code:    code,
		File:    d.file,
		Path:    path,
		Pos:     nodePos(n),
		Message: fmt.Sprintf(format, args...),
	})
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "nothing"
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// keyValue is one entry of a YAML mapping.
type keyValue struct {
	key, value *yaml.Node
}

// entries returns a mapping's entries in file order with merge keys (<<)
// expanded: explicitly written keys win over merged ones, as in YAML 1.1.
// Duplicate explicit keys are reported.
func (d *decoder) entries(path string, n *yaml.Node) []keyValue {
	var explicit, merged []keyValue
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(path, resolve(v))...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.issue(problem.ConfigSyntax, path, k, "a key must be a plain word, found %s; check the indentation", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.issue(problem.ConfigSyntax, joinPath(path, k.Value), k,
				"duplicate key %q (first at line %d); remove one of them", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		explicit = append(explicit, keyValue{k, v})
	}
	for _, kv := range merged {
		if _, ok := seen[kv.key.Value]; ok {
			continue
		}
		seen[kv.key.Value] = kv.key
		explicit = append(explicit, kv)
	}
	return explicit
}

func (d *decoder) mergeSources(path string, v *yaml.Node) []keyValue {
	switch v.Kind {
	case yaml.MappingNode:
		return d.entries(path, v)
	case yaml.SequenceNode:
		var out []keyValue
		for _, s := range v.Content {
			s = resolve(s)
			if s.Kind != yaml.MappingNode {
				d.issue(problem.ConfigSyntax, path, s, "a merge key (<<) takes a mapping or a list of mappings, found %s", kindName(s))
				continue
			}
			out = append(out, d.entries(path, s)...)
		}
		return out
	}
	d.issue(problem.ConfigSyntax, path, v, "a merge key (<<) takes a mapping or a list of mappings, found %s", kindName(v))
	return nil
}

// decode stores n into v, a settable value, reporting problems under path.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	n = resolve(n)
	if n == nil {
		return
	}
	if isNull(n) && v.Type() != anyType {
		// An empty value ("key:" or "key: null") leaves the zero value,
		// which means "use the default", and counts as not written.
		return
	}
	if path != "" {
		d.positions[path] = nodePos(n)
	}
	switch {
	case v.Type() == durationType:
		d.decodeDuration(path, n, v)
		return
	case v.Type() == anyType:
		d.decodeAny(path, n, v)
		return
	case v.Type() == columnsType && n.Kind == yaml.ScalarNode:
		// One column may be written without brackets.
		v.Set(reflect.ValueOf(Columns{n.Value}))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(path, n, v)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(path, n, p.Elem())
		v.Set(p)
	case reflect.Slice:
		d.decodeSlice(path, n, v)
	case reflect.Map:
		d.decodeStringMap(path, n, v)
	case reflect.String:
		if s, ok := d.scalar(path, n, "a text value"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		if _, ok := d.scalar(path, n, "a whole number"); !ok {
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || n.ShortTag() != "!!int" {
			d.issue(problem.ConfigSyntax, path, n, "%s must be a whole number, found %q", lastSegment(path), n.Value)
			return
		}
		if v.OverflowInt(i) {
			d.issue(problem.ConfigSyntax, path, n, "%s is too large: %s", lastSegment(path), n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if _, ok := d.scalar(path, n, "true or false"); !ok {
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.issue(problem.ConfigSyntax, path, n, "%s must be true or false, found %q", lastSegment(path), n.Value)
			return
		}
		v.SetBool(b)
	default:
		// Only reachable if config.go gains a field of a new kind.
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// scalar returns a scalar's text, or reports that want was expected.
func (d *decoder) scalar(path string, n *yaml.Node, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.issue(problem.ConfigSyntax, path, n, "%s must be %s, found %s", lastSegment(path), want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) decodeDuration(path string, n *yaml.Node, v reflect.Value) {
	s, ok := d.scalar(path, n, `a duration such as "24h" or "500ms"`)
	if !ok {
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.issue(problem.ConfigSyntax, path, n, "%s must be a duration such as \"24h\" or \"500ms\" (units ns, us, ms, s, m, h), found %q", lastSegment(path), s)
		return
	}
	v.SetInt(int64(dur))
}

// decodeAny decodes a column default: a scalar, typed as YAML reads it.
// Integers become int64, decimals float64, true/false bool, null nil, and
// everything else (text, dates) string.
func (d *decoder) decodeAny(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.issue(problem.ConfigSyntax, path, n, "%s must be a single value (text, number, true/false or null), found %s", lastSegment(path), kindName(n))
		return
	}
	var out any
	switch n.ShortTag() {
	case "!!null":
		out = nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			out = b
		} else {
			out = n.Value
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			out = i
		} else {
			out = n.Value // larger than int64: keep the digits
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			out = f
		} else {
			out = n.Value
		}
	default:
		out = n.Value
	}
	if out == nil {
		v.Set(reflect.Zero(anyType))
		return
	}
	v.Set(reflect.ValueOf(out))
}

func (d *decoder) decodeSlice(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.issue(problem.ConfigSyntax, path, n, "%s must be a list, found %s", lastSegment(path), kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(fmt.Sprintf("%s[%d]", path, i), item, out.Index(i))
	}
	v.Set(out)
}

// decodeStringMap decodes a map[string]string (value_map) and returns its
// pairs in file order.
func (d *decoder) decodeStringMap(path string, n *yaml.Node, v reflect.Value) [][2]string {
	if n.Kind != yaml.MappingNode {
		d.issue(problem.ConfigSyntax, path, n, "%s must be a mapping of values, found %s", lastSegment(path), kindName(n))
		return nil
	}
	m := reflect.MakeMap(v.Type())
	var pairs [][2]string
	for _, kv := range d.entries(path, n) {
		val := resolve(kv.value)
		p := joinPath(path, kv.key.Value)
		d.positions[p] = nodePos(val)
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.issue(problem.ConfigSyntax, p, val, "value_map maps values as text; %q must map to a single value, found %s", kv.key.Value, kindName(val))
			continue
		}
		m.SetMapIndex(reflect.ValueOf(kv.key.Value), reflect.ValueOf(val.Value))
		pairs = append(pairs, [2]string{kv.key.Value, val.Value})
	}
	v.Set(m)
	return pairs
}

// field is one decodable struct field.
type field struct {
	index int
	name  string
}

func yamlFields(t reflect.Type) (fields map[string]field, names []string, posIndex int) {
	fields = map[string]field{}
	posIndex = -1
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Type == posType && f.Name == "Pos" {
			posIndex = i
			continue
		}
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" || tag == "" {
			continue
		}
		fields[tag] = field{index: i, name: tag}
		names = append(names, tag)
	}
	return fields, names, posIndex
}

func (d *decoder) decodeStruct(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping of fields"
		if path == "" {
			what = "a mapping with link, engine and maps"
		}
		d.issue(problem.ConfigSyntax, path, n, "%s must be %s, found %s", nonEmpty(lastSegment(path), "the file"), what, kindName(n))
		return
	}
	fields, names, posIndex := yamlFields(v.Type())
	if posIndex >= 0 {
		v.Field(posIndex).Set(reflect.ValueOf(nodePos(n)))
	}
	cm, isColumn := v.Addr().Interface().(*ColumnMap)
	for _, kv := range d.entries(path, n) {
		name := kv.key.Value
		f, ok := fields[name]
		if !ok {
			d.issue(problem.ConfigSyntax, joinPath(path, name), kv.key, "unknown field %q%s; the fields here are %s",
				name, suggest(name, names), strings.Join(names, ", "))
			continue
		}
		fp := joinPath(path, name)
		switch {
		case isColumn && name == "value_map":
			if val := resolve(kv.value); !isNull(val) {
				d.positions[fp] = nodePos(val)
				cm.ValueMapPairs = d.decodeStringMap(fp, val, v.Field(f.index))
				continue
			}
		case isColumn && name == "default":
			cm.HasDefault = true
		}
		d.decode(fp, kv.value, v.Field(f.index))
	}
}

func nonEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// lastSegment returns the field name at the end of a path, for messages:
// "maps[1].key[0].left" → "left", "maps[1].key" → "key".
func lastSegment(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	if i := strings.IndexByte(path, '['); i > 0 {
		if _, err := strconv.Atoi(strings.Trim(path[i:], "[]")); err == nil {
			return path[:i] + " item"
		}
	}
	return path
}

// suggest returns `; did you mean "x"?` for the closest known name within
// two edits, or "".
func suggest(name string, names []string) string {
	best, bestDist := "", 3
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if dist := editDistance(name, n); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

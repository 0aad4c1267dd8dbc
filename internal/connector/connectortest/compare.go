package connectortest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// checkCanonical reports whether v has the canonical Go type for kind k
// (see change.Row); nil is always allowed.
func checkCanonical(k connector.Kind, v any) error {
	if v == nil {
		return nil
	}
	ok := false
	switch k {
	case connector.KindInt:
		_, ok = v.(int64)
	case connector.KindFloat:
		_, ok = v.(float64)
	case connector.KindDecimal:
		_, ok = v.(change.Decimal)
	case connector.KindBool:
		_, ok = v.(bool)
	case connector.KindBytes:
		_, ok = v.([]byte)
	case connector.KindDate, connector.KindTime:
		var tm time.Time
		tm, ok = v.(time.Time)
		if ok {
			if _, off := tm.Zone(); off != 0 {
				return fmt.Errorf("time %v is not UTC", tm)
			}
		}
	case connector.KindText, connector.KindUUID, connector.KindJSON, connector.KindOther:
		_, ok = v.(string)
	}
	if !ok {
		return fmt.Errorf("value %#v of kind %s has Go type %T, not the canonical one", v, k, v)
	}
	return nil
}

// sameValue compares two canonical values of kind k: times by instant,
// JSON by meaning, everything else exactly.
func sameValue(k connector.Kind, want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	switch k {
	case connector.KindDate, connector.KindTime:
		a, ok1 := want.(time.Time)
		b, ok2 := got.(time.Time)
		return ok1 && ok2 && a.Equal(b)
	case connector.KindBytes:
		a, ok1 := want.([]byte)
		b, ok2 := got.([]byte)
		return ok1 && ok2 && bytes.Equal(a, b)
	case connector.KindFloat:
		a, ok1 := want.(float64)
		b, ok2 := got.(float64)
		return ok1 && ok2 && (a == b || math.IsNaN(a) && math.IsNaN(b))
	case connector.KindJSON:
		a, ok1 := want.(string)
		b, ok2 := got.(string)
		if !ok1 || !ok2 {
			return false
		}
		var x, y any
		if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
			return a == b
		}
		xa, _ := json.Marshal(x)
		ya, _ := json.Marshal(y)
		return bytes.Equal(xa, ya)
	}
	return want == got
}

// show renders a value for failure messages, shortening long ones.
func show(v any) string {
	var s string
	switch x := v.(type) {
	case []byte:
		s = "x'" + hex.EncodeToString(x) + "'"
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	default:
		s = fmt.Sprintf("%T(%#v)", v, v)
	}
	if len(s) > 120 {
		s = s[:100] + fmt.Sprintf("...(%d chars)", len(s))
	}
	return s
}

// diffRow compares got with want column by column, using kinds for the
// comparison (columns missing from kinds compare exactly). It returns ""
// when they match.
func diffRow(kinds map[string]connector.Kind, want, got change.Row) string {
	var out []string
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		w, wok := want[n]
		g, gok := got[n]
		k := kinds[n]
		switch {
		case !wok:
			out = append(out, fmt.Sprintf("%s: unexpected column (value %s)", n, show(g)))
		case !gok:
			out = append(out, fmt.Sprintf("%s: missing, want %s", n, show(w)))
		default:
			if err := checkCanonical(k, g); err != nil {
				out = append(out, fmt.Sprintf("%s: %v", n, err))
			} else if !sameValue(k, w, g) {
				out = append(out, fmt.Sprintf("%s: got %s, want %s", n, show(g), show(w)))
			}
		}
	}
	return strings.Join(out, "; ")
}

func kindsOf(cols []column) map[string]connector.Kind {
	m := make(map[string]connector.Kind, len(cols))
	for _, c := range cols {
		m[c.name] = c.kind
	}
	return m
}

func names(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

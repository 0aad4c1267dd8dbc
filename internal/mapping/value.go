package mapping

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// normalize turns the Go types an expression or a YAML default can produce
// (int, uint32, float32, json.RawMessage...) into the canonical types of
// change.Row. Canonical values are returned unchanged.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, change.Decimal, string, []byte:
		return v
	case time.Time:
		return x.UTC()
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return uintValue(uint64(x))
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return uintValue(x)
	case float32:
		// Through the shortest decimal form: float32(1.1) means 1.1, not
		// 1.100000023841858.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return f
	case *time.Time:
		if x == nil {
			return nil
		}
		return x.UTC()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return rv.Bytes()
		}
	}
	return v
}

func uintValue(u uint64) any {
	if u > math.MaxInt64 {
		return change.Decimal(strconv.FormatUint(u, 10))
	}
	return int64(u)
}

// parseDecimal parses decimal text (optional sign, digits, optional
// fraction, optional exponent) exactly. It rejects the fractions and other
// forms big.Rat also accepts.
func parseDecimal(s string) (*big.Rat, bool) {
	if !isDecimalText(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

func isDecimalText(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// decimalDigits returns s (valid decimal text) without an exponent and
// without a leading '+', keeping its written scale: "1.50" stays "1.50",
// "1.5e3" becomes "1500".
func decimalDigits(s string) string {
	s = strings.TrimPrefix(s, "+")
	mant, exp := s, 0
	if e := strings.IndexAny(s, "eE"); e >= 0 {
		x, err := strconv.Atoi(s[e+1:])
		if err != nil {
			return s
		}
		mant, exp = s[:e], x
	}
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + exp // position of the decimal point in digits
	switch {
	case point <= 0:
		digits = strings.Repeat("0", -point+1) + digits
		point = 1
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	out := strings.TrimLeft(digits[:point], "0")
	if out == "" {
		out = "0"
	}
	if point < len(digits) {
		out += "." + digits[point:]
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return out
}

// formatFloat renders a float64 as plain decimal digits where that is
// reasonable, else in exponent form.
func formatFloat(f float64) string {
	a := math.Abs(f)
	if f == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// ratOf returns the exact value of a number. A float64 counts as its
// shortest decimal form. ok is false for non-numbers, NaN and infinities.
func ratOf(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return new(big.Rat).SetString(strconv.FormatFloat(x, 'g', -1, 64))
	case change.Decimal:
		return parseDecimal(strings.TrimSpace(string(x)))
	}
	return nil, false
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64, change.Decimal:
		return true
	}
	return false
}

// Equal reports whether a and b are the same value across databases:
// NULL equals only NULL; numbers (int64, float64, Decimal) compare exactly
// by value, a float64 by its shortest decimal form; times compare by
// instant (a date is midnight UTC); a string equals []byte with the same
// bytes; a bool equals the numbers 0 and 1.
func Equal(a, b any) bool {
	a, b = normalize(a), normalize(b)
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case []byte:
			return x == string(y)
		}
		return false
	case []byte:
		switch y := b.(type) {
		case string:
			return string(x) == y
		case []byte:
			return bytes.Equal(x, y)
		}
		return false
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y
		}
		if isNumber(b) {
			return numEqual(boolNumber(x), b)
		}
		return false
	}
	if isNumber(a) {
		if y, ok := b.(bool); ok {
			return numEqual(a, boolNumber(y))
		}
		if isNumber(b) {
			return numEqual(a, b)
		}
		return false
	}
	return reflect.DeepEqual(a, b)
}

func boolNumber(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func numEqual(a, b any) bool {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return x == y
		}
	case float64:
		if y, ok := b.(float64); ok {
			return x == y // NaN is never equal, infinities by sign
		}
	}
	ra, okA := ratOf(a)
	rb, okB := ratOf(b)
	if !okA || !okB {
		// Not a finite number (NaN, Infinity or malformed digits): only
		// the same text is the same value.
		da, isDA := a.(change.Decimal)
		db, isDB := b.(change.Decimal)
		return isDA && isDB && da == db
	}
	return ra.Cmp(rb) == 0
}

// Diff returns the columns of want whose value differs from have (a
// column missing from have differs), sorted.
func Diff(want, have change.Row) []string {
	var out []string
	for col, w := range want {
		h, ok := have[col]
		if !ok || !Equal(w, h) {
			out = append(out, col)
		}
	}
	sort.Strings(out)
	return out
}

// textOf renders a canonical value as text: int64 "1", float64 in decimal
// digits, Decimal as its digits, bool "true"/"false", time in RFC 3339
// with nanoseconds (UTC), bytes as they are.
func textOf(v any) string {
	switch x := normalize(v).(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case change.Decimal:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}

// coerceError is the DW3003 error of a value that does not convert.
func coerceError(v any, k connector.Kind, why string) error {
	shown := textOf(v)
	if b, ok := v.([]byte); ok && !utf8.Valid(b) {
		shown = "0x" + hex.EncodeToString(b)
	}
	if len(shown) > 64 {
		shown = shown[:61] + "..."
	}
	return problem.New(problem.TransformFailed, "cannot convert %s value %q to a %s column: %s; fix the value or add a value_map or expression to the column map",
		typeName(v), shown, k, why)
}

func typeName(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "float"
	case change.Decimal:
		return "decimal"
	case string:
		return "text"
	case []byte:
		return "bytes"
	case bool:
		return "bool"
	case time.Time:
		return "time"
	}
	return reflect.TypeOf(v).String()
}

// Coerce converts v to the canonical Go type of kind k (see change.Row):
//
//	int      int64 from integers, integral floats and decimals, decimal
//	         text ("12", "12.0") and bools; an integer beyond int64 stays a
//	         Decimal
//	float    float64 from numbers, numeric text and bools
//	decimal  Decimal from numbers, decimal text (exponents expanded) and
//	         bools
//	text     string from anything: Decimal as its digits, time as RFC 3339
//	         with nanoseconds, bool as "true"/"false"; other as text too
//	bool     bool from bools, the numbers 0 and 1 and text such as "true",
//	         "1", "yes", "off"
//	bytes    []byte from bytes and text
//	time     time.Time (UTC) from times and RFC 3339, "2006-01-02" or
//	         "2006-01-02 15:04:05[.fff]" text (no zone means UTC)
//	date     like time, cut to midnight UTC
//	uuid     lower-cased text; 16 raw bytes are formatted 8-4-4-4-12
//	json     JSON text: text as it is, numbers and bools as literals, a
//	         time as a JSON string
//
// An empty kind leaves the value as it is. NULL stays NULL. Errors carry
// code DW3003.
func Coerce(v any, k connector.Kind) (any, error) {
	v = normalize(v)
	if v == nil {
		return nil, nil
	}
	switch k {
	case connector.KindInt:
		return toInt(v)
	case connector.KindFloat:
		return toFloat(v)
	case connector.KindDecimal:
		return toDecimal(v)
	case connector.KindText, connector.KindOther:
		return textOf(v), nil
	case connector.KindBool:
		return toBool(v)
	case connector.KindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
		return nil, coerceError(v, k, "only text and bytes convert to bytes")
	case connector.KindTime, connector.KindDate:
		t, err := toTime(v, k)
		if err != nil {
			return nil, err
		}
		if k == connector.KindDate {
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		}
		return t, nil
	case connector.KindUUID:
		switch x := v.(type) {
		case string:
			return strings.ToLower(strings.TrimSpace(x)), nil
		case []byte:
			if len(x) == 16 {
				h := hex.EncodeToString(x)
				return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
			}
			return strings.ToLower(string(x)), nil
		}
		return nil, coerceError(v, k, "only text and 16-byte values convert to a uuid")
	case connector.KindJSON:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case time.Time:
			return strconv.Quote(textOf(x)), nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, coerceError(v, k, "JSON has no NaN or infinity")
			}
		}
		return textOf(v), nil
	}
	return v, nil
}

func toInt(v any) (any, error) {
	const k = connector.KindInt
	switch x := v.(type) {
	case int64:
		return x, nil
	case bool:
		return boolNumber(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, coerceError(v, k, "not a finite number")
		}
		if x != math.Trunc(x) {
			return nil, coerceError(v, k, "it has a fraction")
		}
		if x >= -(1<<63) && x < 1<<63 {
			return int64(x), nil
		}
		return change.Decimal(strconv.FormatFloat(x, 'f', -1, 64)), nil
	case change.Decimal, string:
		s := strings.TrimSpace(textOf(x))
		r, ok := parseDecimal(s)
		if !ok {
			return nil, coerceError(v, k, "not a number")
		}
		if !r.IsInt() {
			return nil, coerceError(v, k, "it has a fraction")
		}
		n := r.Num()
		if n.IsInt64() {
			return n.Int64(), nil
		}
		return change.Decimal(n.String()), nil
	}
	return nil, coerceError(v, k, "not a number")
}

func toFloat(v any) (any, error) {
	const k = connector.KindFloat
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case bool:
		return float64(boolNumber(x)), nil
	case change.Decimal, string:
		s := strings.TrimSpace(textOf(x))
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errorsIsRange(err) {
			return nil, coerceError(v, k, "not a number")
		}
		if err != nil {
			return nil, coerceError(v, k, "out of the float range")
		}
		return f, nil
	}
	return nil, coerceError(v, k, "not a number")
}

func errorsIsRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func toDecimal(v any) (any, error) {
	const k = connector.KindDecimal
	switch x := v.(type) {
	case change.Decimal:
		return x, nil
	case int64:
		return change.Decimal(strconv.FormatInt(x, 10)), nil
	case bool:
		return change.Decimal(strconv.FormatInt(boolNumber(x), 10)), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, coerceError(v, k, "not a finite number")
		}
		return change.Decimal(strconv.FormatFloat(x, 'f', -1, 64)), nil
	case string:
		s := strings.TrimSpace(x)
		if !isDecimalText(s) {
			return nil, coerceError(v, k, "not a decimal number")
		}
		return change.Decimal(decimalDigits(s)), nil
	}
	return nil, coerceError(v, k, "not a number")
}

func toBool(v any) (any, error) {
	const k = connector.KindBool
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64, float64, change.Decimal:
		switch {
		case numEqual(x, int64(0)):
			return false, nil
		case numEqual(x, int64(1)):
			return true, nil
		}
		return nil, coerceError(v, k, "only 0 and 1 are booleans")
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "t", "1", "yes", "y", "on":
			return true, nil
		case "false", "f", "0", "no", "n", "off":
			return false, nil
		}
		return nil, coerceError(v, k, "not a boolean (use true/false or 1/0)")
	}
	return nil, coerceError(v, k, "not a boolean")
}

// timeLayouts are the text forms a time is read from, tried in order. A
// layout without a zone reads UTC. Fractional seconds are accepted after
// the seconds in every layout.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z07",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

func toTime(v any, k connector.Kind) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		s := strings.TrimSpace(x)
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, coerceError(v, k, `not a time (use RFC 3339, "2006-01-02" or "2006-01-02 15:04:05")`)
	}
	return time.Time{}, coerceError(v, k, "only times and time text convert to a time")
}

// compatible reports whether columns of kinds a and b can carry each
// other's values without a transform.
func compatible(a, b connector.Kind) bool {
	if a == b || a == "" || b == "" {
		return true
	}
	group := func(k connector.Kind) string {
		switch k {
		case connector.KindText, connector.KindOther:
			return "text"
		case connector.KindInt, connector.KindFloat, connector.KindDecimal:
			return "number"
		case connector.KindTime, connector.KindDate:
			return "time"
		}
		return string(k)
	}
	ga, gb := group(a), group(b)
	if ga == "text" || gb == "text" || ga == gb {
		return true
	}
	pair := func(x, y string) bool { return (ga == x && gb == y) || (ga == y && gb == x) }
	// bool is stored as 0/1 in many databases (MySQL tinyint(1)); a uuid is
	// 16 bytes in binary(16) columns.
	return pair("bool", "number") && a != connector.KindFloat && b != connector.KindFloat ||
		pair(string(connector.KindUUID), string(connector.KindBytes))
}

// Fingerprint returns a string that is the same for values Equal calls
// equal, for hashing keys read from the two sides. ok is false for a value
// it cannot fingerprint (compare those with Equal).
func Fingerprint(v any) (fp string, ok bool) {
	v = normalize(v)
	switch x := v.(type) {
	case nil:
		return "null", true
	case string:
		return "s:" + x, true
	case []byte:
		return "s:" + string(x), true
	case time.Time:
		return "t:" + x.Format(time.RFC3339Nano), true
	case bool:
		if x {
			return "n:1", true
		}
		return "n:0", true
	case int64:
		return "n:" + strconv.FormatInt(x, 10), true
	case float64, change.Decimal:
		r, ok := ratOf(x)
		if !ok {
			return "", false
		}
		return "n:" + r.RatString(), true
	}
	return "", false
}

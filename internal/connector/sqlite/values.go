package sqlite

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// timeLayout is how times are stored: UTC text that sorts in time order
// and that SQLite's date functions read.
const timeLayout = "2006-01-02 15:04:05.999999999"

// dateLayout is how dates are stored.
const dateLayout = "2006-01-02"

// timeLayouts are the text forms read back: SQLite's date and time formats
// 1 to 7, with and without a zone (no zone means UTC).
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04:05.999999999 -0700",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// toStored converts a canonical value into what SQLite stores for a column
// of kind k.
func toStored(k connector.Kind, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case int64, float64, string:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case change.Decimal:
		return string(x), nil
	case []byte:
		if x == nil {
			return []byte{}, nil
		}
		return x, nil
	case time.Time:
		if k == connector.KindDate {
			return x.UTC().Format(dateLayout), nil
		}
		return x.UTC().Format(timeLayout), nil
	}
	return nil, fmt.Errorf("value of Go type %T is not canonical", v)
}

// fromStored converts what the driver read (int64, float64, string,
// []byte, time.Time or nil) into the canonical value for the column.
func fromStored(c colInfo, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.([]byte); ok && c.kind != connector.KindBytes {
		v = string(b)
	}
	switch c.kind {
	case connector.KindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
				return int64(x), nil
			}
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return n, nil
			}
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case connector.KindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		}
	case connector.KindDecimal:
		switch x := v.(type) {
		case string:
			return change.Decimal(strings.TrimSpace(x)), nil
		case int64:
			return change.Decimal(withScale(strconv.FormatInt(x, 10), c.scale)), nil
		case float64:
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				return change.Decimal(withScale(strconv.FormatFloat(x, 'f', -1, 64), c.scale)), nil
			}
		}
	case connector.KindBool:
		switch x := v.(type) {
		case int64:
			return x != 0, nil
		case float64:
			return x != 0, nil
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, nil
			}
		}
	case connector.KindBytes:
		switch x := v.(type) {
		case []byte:
			return append([]byte{}, x...), nil
		case string:
			return []byte(x), nil
		}
	case connector.KindDate, connector.KindTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			if tm, ok := parseTime(x); ok {
				return tm, nil
			}
		case int64:
			return time.Unix(x, 0).UTC(), nil
		case float64:
			if tm, ok := realTime(x); ok {
				return tm, nil
			}
		}
	default: // text, uuid, json, other
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int64:
			s = strconv.FormatInt(x, 10)
		case float64:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		case time.Time:
			s = x.UTC().Format(timeLayout)
		default:
			return nil, fmt.Errorf("cannot read %T as %s", v, c.kind)
		}
		if c.kind == connector.KindUUID {
			s = strings.ToLower(s)
		}
		return s, nil
	}
	return nil, fmt.Errorf("cannot read %s as %s", describeValue(v), c.kind)
}

func describeValue(v any) string {
	s := fmt.Sprintf("%T %v", v, v)
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

// parseTime reads a stored time; text without a zone is UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm.UTC(), true
		}
	}
	return time.Time{}, false
}

// julianUnixEpoch is the Julian day number of 1970-01-01 00:00 UTC.
const julianUnixEpoch = 2440587.5

// realTime reads a time stored as REAL the way SQLite's 'auto' modifier
// does: from 0 to 5373484.499999 a Julian day number (julianday()),
// otherwise Unix seconds with a fraction (unixepoch('subsec'), a
// language's float clock). SQLite keeps Julian days to the millisecond,
// about what a float64 day number resolves; Unix seconds are rounded to
// the microsecond (a float64 resolves today's to about 0.25 µs).
func realTime(f float64) (time.Time, bool) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return time.Time{}, false
	case f >= 0 && f < 5373484.5:
		ms := math.Round((f - julianUnixEpoch) * 86_400_000)
		return time.UnixMilli(int64(ms)).UTC(), true
	case f < -210866760000 || f > 253402300799:
		// Outside years 0000 to 9999, as for SQLite's date functions.
		return time.Time{}, false
	}
	sec := math.Floor(f)
	us := math.Round((f - sec) * 1e6)
	return time.Unix(int64(sec), int64(us)*1000).UTC(), true
}

// withScale pads (never rounds) the fractional digits of a plain decimal
// number to scale; scale -1 leaves it as is.
func withScale(s string, scale int) string {
	if scale < 0 || strings.ContainsAny(s, "eE") {
		return s
	}
	dot := strings.IndexByte(s, '.')
	frac := 0
	if dot >= 0 {
		frac = len(s) - dot - 1
	}
	if frac >= scale {
		return s
	}
	if dot < 0 {
		if scale == 0 {
			return s
		}
		s += "."
	}
	return s + strings.Repeat("0", scale-frac)
}

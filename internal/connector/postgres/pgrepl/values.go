package pgrepl

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// Type OIDs of the built-in types the decoder knows (pg_type.dat).
const (
	OIDBool        = 16
	OIDBytea       = 17
	OIDName        = 19
	OIDInt8        = 20
	OIDInt2        = 21
	OIDInt4        = 23
	OIDText        = 25
	OIDJSON        = 114
	OIDFloat4      = 700
	OIDFloat8      = 701
	OIDBpchar      = 1042
	OIDVarchar     = 1043
	OIDDate        = 1082
	OIDTimestamp   = 1114
	OIDTimestamptz = 1184
	OIDNumeric     = 1700
	OIDUUID        = 2950
	OIDJSONB       = 3802
)

// DecodeText converts a value in PostgreSQL's text output format to its
// canonical Go form (see change.Row) by type OID. The session must use
// DateStyle ISO and bytea_output hex. Types without a canonical form
// (arrays, intervals, domains, user types) and infinite dates come back as
// their text.
func DecodeText(oid uint32, data []byte) (any, error) {
	s := string(data)
	switch oid {
	case OIDInt2, OIDInt4, OIDInt8:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode integer %q: %w", s, err)
		}
		return v, nil
	case OIDNumeric:
		return change.Decimal(s), nil
	case OIDFloat4, OIDFloat8:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("decode float %q: %w", s, err)
		}
		return v, nil
	case OIDBool:
		switch s {
		case "t":
			return true, nil
		case "f":
			return false, nil
		}
		return nil, fmt.Errorf("decode bool %q: want t or f", s)
	case OIDText, OIDVarchar, OIDBpchar, OIDName, OIDUUID, OIDJSON, OIDJSONB:
		return s, nil
	case OIDBytea:
		if !strings.HasPrefix(s, `\x`) {
			return nil, fmt.Errorf("decode bytea: not in hex format (set bytea_output = hex)")
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, fmt.Errorf("decode bytea: %w", err)
		}
		return b, nil
	case OIDDate:
		if isInfinite(s) {
			return s, nil
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return nil, fmt.Errorf("decode date %q: %w", s, err)
		}
		return t, nil
	case OIDTimestamp:
		if isInfinite(s) {
			return s, nil
		}
		t, err := time.Parse("2006-01-02 15:04:05.999999999", s)
		if err != nil {
			return nil, fmt.Errorf("decode timestamp %q: %w", s, err)
		}
		return t, nil
	case OIDTimestamptz:
		if isInfinite(s) {
			return s, nil
		}
		return parseTimestamptz(s)
	}
	return s, nil
}

func isInfinite(s string) bool {
	return s == "infinity" || s == "-infinity" || strings.HasSuffix(s, " BC")
}

// parseTimestamptz parses ISO output: the offset is "+HH", "+HH:MM" or
// "+HH:MM:SS" depending on the zone.
func parseTimestamptz(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999Z07",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999Z07:00:00",
	} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("decode timestamptz %q: %w", s, err)
}

// EncodeText renders a canonical value as a text-format query parameter.
// A nil result is SQL NULL. The server infers the parameter's type from
// where it is used.
func EncodeText(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if x {
			return []byte("t"), nil
		}
		return []byte("f"), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), nil
	case float64:
		return encodeFloat(x), nil
	case float32:
		return encodeFloat(float64(x)), nil
	case change.Decimal:
		return []byte(x), nil
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return nil, fmt.Errorf("encode text: PostgreSQL text cannot hold a NUL character")
		}
		return []byte(x), nil
	case []byte:
		out := make([]byte, 2+hex.EncodedLen(len(x)))
		copy(out, `\x`)
		hex.Encode(out[2:], x)
		return out, nil
	case time.Time:
		return []byte(x.UTC().Format("2006-01-02 15:04:05.999999999Z07:00")), nil
	}
	return nil, fmt.Errorf("encode value: %T is not a canonical type", v)
}

func encodeFloat(f float64) []byte {
	switch {
	case math.IsNaN(f):
		return []byte("NaN")
	case math.IsInf(f, 1):
		return []byte("Infinity")
	case math.IsInf(f, -1):
		return []byte("-Infinity")
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64)
}

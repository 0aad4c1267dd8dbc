package mysql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/connector/mysql/binlog"
)

// fromSQL converts a value read through database/sql into the canonical
// form for the column (see change.Row).
func fromSQL(ci colInfo, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch ci.Kind {
	case connector.KindBool:
		switch x := v.(type) {
		case int64:
			return x != 0, nil
		case uint64:
			return x != 0, nil
		case []byte: // bit(1), or a text-protocol tinyint
			if ci.DataType == "bit" {
				for _, b := range x {
					if b != 0 {
						return true, nil
					}
				}
				return false, nil
			}
			n, err := strconv.ParseInt(string(x), 10, 64)
			return n != 0, err
		}
	case connector.KindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case uint64:
			return uintValue(x), nil
		case []byte:
			if ci.Unsigned {
				n, err := strconv.ParseUint(string(x), 10, 64)
				return uintValue(n), err
			}
			return strconv.ParseInt(string(x), 10, 64)
		}
	case connector.KindFloat:
		switch x := v.(type) {
		case float32:
			return float64(x), nil
		case float64:
			return x, nil
		case []byte:
			if ci.DataType == "float" {
				f, err := strconv.ParseFloat(string(x), 32)
				return float64(float32(f)), err
			}
			return strconv.ParseFloat(string(x), 64)
		}
	case connector.KindDecimal:
		switch x := v.(type) {
		case []byte:
			return change.Decimal(x), nil
		case string:
			return change.Decimal(x), nil
		}
	case connector.KindDate, connector.KindTime:
		if x, ok := v.(time.Time); ok {
			return x.UTC(), nil
		}
	case connector.KindBytes:
		if x, ok := v.([]byte); ok {
			return append([]byte{}, x...), nil
		}
	default: // text, json, uuid, other
		switch x := v.(type) {
		case []byte:
			return string(x), nil
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case time.Time:
			return x.UTC().Format("2006-01-02 15:04:05.999999"), nil
		}
	}
	return nil, fmt.Errorf("column %s (%s): unexpected driver value %T", ci.Name, ci.ColumnType, v)
}

// uintValue is an unsigned integer in canonical form: int64 when it fits,
// Decimal above MaxInt64.
func uintValue(u uint64) any {
	if u > math.MaxInt64 {
		return change.Decimal(strconv.FormatUint(u, 10))
	}
	return int64(u)
}

// fromBinlog converts a raw binlog value (see binlog.decodeValue) into the
// canonical form for the column.
func fromBinlog(ci colInfo, ct binlog.ColumnType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case int64:
		if ci.Kind == connector.KindBool {
			return x != 0, nil
		}
		if ci.Unsigned && ct.Type != binlog.TypeYear {
			return uintValue(binlog.AsUnsigned(ct.Type, x)), nil
		}
		return x, nil
	case float64, change.Decimal, time.Time:
		return x, nil
	case string: // TIME, MySQL JSON text
		return x, nil
	case binlog.Enum:
		if x == 0 {
			return "", nil
		}
		if int(x) > len(ci.Labels) {
			return nil, fmt.Errorf("column %s: enum index %d beyond the %d labels information_schema lists", ci.Name, x, len(ci.Labels))
		}
		return ci.Labels[x-1], nil
	case binlog.Set:
		var parts []string
		for i, l := range ci.Labels {
			if x&(1<<uint(i)) != 0 {
				parts = append(parts, l)
			}
		}
		return strings.Join(parts, ","), nil
	case []byte:
		switch {
		case ct.Type == binlog.TypeBit:
			if ci.Kind == connector.KindBool {
				for _, b := range x {
					if b != 0 {
						return true, nil
					}
				}
				return false, nil
			}
			return x, nil
		case ci.DataType == "uuid":
			return formatUUID(x)
		case ci.Kind == connector.KindBytes:
			if ci.DataType == "binary" && int64(len(x)) < ci.MaxLen {
				// The binlog drops BINARY(n)'s trailing zero padding; the
				// column value (and SELECT) has it.
				x = append(x, make([]byte, ci.MaxLen-int64(len(x)))...)
			}
			return x, nil
		case ci.Charset != "":
			return decodeText(ci, x)
		case ci.Kind == connector.KindOther:
			return string(x), nil
		}
		return x, nil
	}
	return nil, fmt.Errorf("column %s (%s): unexpected binlog value %T", ci.Name, ci.ColumnType, v)
}

// decodeText turns a text column's bytes into a UTF-8 string.
func decodeText(ci colInfo, b []byte) (any, error) {
	switch {
	case strings.HasPrefix(ci.Charset, "utf8"), ci.Charset == "ascii":
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("column %s: value is not valid %s", ci.Name, ci.Charset)
		}
		return string(b), nil
	case ci.Charset == "latin1":
		// MySQL's latin1 is Windows-1252.
		s, err := charmap.Windows1252.NewDecoder().Bytes(b)
		if err != nil {
			return nil, fmt.Errorf("column %s: decode latin1: %w", ci.Name, err)
		}
		return string(s), nil
	}
	return nil, fmt.Errorf("column %s: character set %s is not supported by capture; convert the column to utf8mb4", ci.Name, ci.Charset)
}

// toSQL converts a canonical value into a driver argument.
func toSQL(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte:
		return x, nil
	case change.Decimal:
		return string(x), nil
	case time.Time:
		return x.UTC(), nil
	}
	return nil, fmt.Errorf("value %#v of type %T is not canonical", v, v)
}

// formatUUID renders MariaDB's UUID column image: 16 bytes in text order,
// with the trailing zero bytes the binlog drops (as for BINARY(16)).
func formatUUID(b []byte) (string, error) {
	if len(b) > 16 {
		return "", fmt.Errorf("uuid image of %d bytes", len(b))
	}
	var u [16]byte
	copy(u[:], b)
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out), nil
}

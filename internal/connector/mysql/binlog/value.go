package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// Enum is an ENUM value: the 1-based index of its label (0 is the empty
// error value).
type Enum uint16

// Set is a SET value: bit i set means the i-th label (0-based) is in.
type Set uint64

// ErrUnsupportedType means a column type that the decoder cannot read.
var ErrUnsupportedType = errors.New("unsupported column type")

// decodeValue reads one non-NULL value of column type c from data and
// returns it with the number of bytes used. Values are:
//
//	TINY, SHORT, INT24, LONG, LONGLONG   int64, sign-extended (see AsUnsigned)
//	YEAR                                 int64 (0 or 1901..2155)
//	FLOAT, DOUBLE                        float64 (FLOAT widened from float32)
//	NEWDECIMAL                           change.Decimal with the column's scale
//	DATE, DATETIME(2)                    time.Time in UTC; zero dates → time.Time{}
//	TIMESTAMP(2)                         time.Time in UTC; 0 → time.Time{}
//	TIME(2)                              string "[-]HH:MM:SS[.ffffff]"
//	VARCHAR, STRING, BLOB, GEOMETRY      []byte (the caller applies the charset)
//	BIT                                  []byte, big-endian, (bits+7)/8 bytes
//	ENUM, SET                            Enum, Set
//	JSON (MySQL's binary JSON)           string, the JSON text MySQL prints
func decodeValue(c ColumnType, data []byte) (any, int, error) {
	need := func(n int) error {
		if len(data) < n {
			return fmt.Errorf("value of type %d needs %d bytes, %d left", c.Type, n, len(data))
		}
		return nil
	}
	switch c.Type {
	case TypeTiny:
		if err := need(1); err != nil {
			return nil, 0, err
		}
		return int64(int8(data[0])), 1, nil
	case TypeShort:
		if err := need(2); err != nil {
			return nil, 0, err
		}
		return int64(int16(binary.LittleEndian.Uint16(data))), 2, nil
	case TypeInt24:
		if err := need(3); err != nil {
			return nil, 0, err
		}
		v := int32(uint32(data[0])|uint32(data[1])<<8|uint32(data[2])<<16) << 8 >> 8
		return int64(v), 3, nil
	case TypeLong:
		if err := need(4); err != nil {
			return nil, 0, err
		}
		return int64(int32(binary.LittleEndian.Uint32(data))), 4, nil
	case TypeLongLong:
		if err := need(8); err != nil {
			return nil, 0, err
		}
		return int64(binary.LittleEndian.Uint64(data)), 8, nil
	case TypeYear:
		if err := need(1); err != nil {
			return nil, 0, err
		}
		if data[0] == 0 {
			return int64(0), 1, nil
		}
		return int64(1900 + int(data[0])), 1, nil
	case TypeFloat:
		if err := need(4); err != nil {
			return nil, 0, err
		}
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(data))), 4, nil
	case TypeDouble:
		if err := need(8); err != nil {
			return nil, 0, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(data)), 8, nil
	case TypeNewDecimal:
		return decodeDecimal(int(c.Precision), int(c.Scale), data)
	case TypeDate, TypeNewDate:
		if err := need(3); err != nil {
			return nil, 0, err
		}
		v := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16
		return makeTime(int(v>>9), int(v>>5&15), int(v&31), 0, 0, 0, 0), 3, nil
	case TypeDateTime2:
		return decodeDateTime2(int(c.Meta), data)
	case TypeTimestamp2:
		return decodeTimestamp2(int(c.Meta), data)
	case TypeTime2:
		return decodeTime2(int(c.Meta), data)
	case TypeTimestamp:
		if err := need(4); err != nil {
			return nil, 0, err
		}
		s := binary.LittleEndian.Uint32(data)
		if s == 0 {
			return time.Time{}, 4, nil
		}
		return time.Unix(int64(s), 0).UTC(), 4, nil
	case TypeDateTime:
		if err := need(8); err != nil {
			return nil, 0, err
		}
		v := binary.LittleEndian.Uint64(data) // YYYYMMDDhhmmss
		d, t := v/1000000, v%1000000
		return makeTime(int(d/10000), int(d/100%100), int(d%100), int(t/10000), int(t/100%100), int(t%100), 0), 8, nil
	case TypeTime:
		if err := need(3); err != nil {
			return nil, 0, err
		}
		v := int32(uint32(data[0])|uint32(data[1])<<8|uint32(data[2])<<16) << 8 >> 8
		neg := v < 0
		if neg {
			v = -v
		}
		return formatTime(neg, int(v/10000), int(v/100%100), int(v%100), 0, 0), 3, nil
	case TypeVarchar, TypeVarString, TypeString:
		prefix := 1
		if c.Meta > 255 {
			prefix = 2
		}
		return lengthPrefixed(prefix, data)
	case TypeBlob, TypeTinyBlob, TypeMediumBlob, TypeLongBlob, TypeGeometry:
		return lengthPrefixed(int(c.Meta), data)
	case TypeBit:
		n := int(c.Bits+7) / 8
		if err := need(n); err != nil {
			return nil, 0, err
		}
		return append([]byte(nil), data[:n]...), n, nil
	case TypeEnum:
		switch c.Meta {
		case 1:
			if err := need(1); err != nil {
				return nil, 0, err
			}
			return Enum(data[0]), 1, nil
		case 2:
			if err := need(2); err != nil {
				return nil, 0, err
			}
			return Enum(binary.LittleEndian.Uint16(data)), 2, nil
		}
		return nil, 0, fmt.Errorf("enum pack length %d", c.Meta)
	case TypeSet:
		n := int(c.Meta)
		if n < 1 || n > 8 {
			return nil, 0, fmt.Errorf("set pack length %d", n)
		}
		if err := need(n); err != nil {
			return nil, 0, err
		}
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(data[i])
		}
		return Set(v), n, nil
	case TypeJSON:
		// MySQL's binary JSON behind a BLOB-style length prefix; MariaDB
		// logs its JSON columns as LONGTEXT and never reaches this case.
		v, n, err := lengthPrefixed(int(c.Meta), data)
		if err != nil {
			return nil, 0, err
		}
		s, err := decodeJSON(v.([]byte))
		if err != nil {
			return nil, 0, fmt.Errorf("json value: %w", err)
		}
		return s, n, nil
	}
	return nil, 0, fmt.Errorf("%w: %d", ErrUnsupportedType, c.Type)
}

// AsUnsigned reinterprets a sign-extended integer of binlog type t as the
// unsigned value the column holds.
func AsUnsigned(t byte, v int64) uint64 {
	switch t {
	case TypeTiny:
		return uint64(v) & 0xff
	case TypeShort:
		return uint64(v) & 0xffff
	case TypeInt24:
		return uint64(v) & 0xffffff
	case TypeLong:
		return uint64(v) & 0xffffffff
	}
	return uint64(v)
}

func lengthPrefixed(prefix int, data []byte) (any, int, error) {
	if prefix < 1 || prefix > 4 {
		return nil, 0, fmt.Errorf("length prefix of %d bytes", prefix)
	}
	if len(data) < prefix {
		return nil, 0, errShort
	}
	var n int
	for i := prefix - 1; i >= 0; i-- {
		n = n<<8 | int(data[i])
	}
	if len(data) < prefix+n {
		return nil, 0, fmt.Errorf("string of %d bytes truncated", n)
	}
	return append([]byte(nil), data[prefix:prefix+n]...), prefix + n, nil
}

func makeTime(y, mo, d, h, mi, s, us int) time.Time {
	if mo == 0 || d == 0 {
		// MySQL zero or partial dates ('0000-00-00') have no time.Time;
		// the SQL driver reads them as the zero time too.
		return time.Time{}
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, us*1000, time.UTC)
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// fracBytes is the storage size of fsp fractional digits.
func fracBytes(fsp int) int { return (fsp + 1) / 2 }

// fracMicros reads the fractional part of DATETIME2/TIMESTAMP2 as
// microseconds.
func fracMicros(fsp int, b []byte) int {
	switch fsp {
	case 1, 2:
		return int(b[0]) * 10000
	case 3, 4:
		return int(beUint(b[:2])) * 100
	case 5, 6:
		return int(beUint(b[:3]))
	}
	return 0
}

func decodeDateTime2(fsp int, data []byte) (any, int, error) {
	n := 5 + fracBytes(fsp)
	if fsp > 6 || len(data) < n {
		return nil, 0, fmt.Errorf("datetime2(%d) needs %d bytes, %d left", fsp, n, len(data))
	}
	v := int64(beUint(data[:5])) - 0x8000000000
	us := fracMicros(fsp, data[5:])
	ymd := v >> 17
	ym := ymd >> 5
	hms := v % (1 << 17)
	return makeTime(int(ym/13), int(ym%13), int(ymd%32), int(hms>>12), int(hms>>6%64), int(hms%64), us), n, nil
}

func decodeTimestamp2(fsp int, data []byte) (any, int, error) {
	n := 4 + fracBytes(fsp)
	if fsp > 6 || len(data) < n {
		return nil, 0, fmt.Errorf("timestamp2(%d) needs %d bytes, %d left", fsp, n, len(data))
	}
	sec := int64(beUint(data[:4]))
	us := fracMicros(fsp, data[4:])
	if sec == 0 && us == 0 {
		return time.Time{}, n, nil
	}
	return time.Unix(sec, int64(us)*1000).UTC(), n, nil
}

func decodeTime2(fsp int, data []byte) (any, int, error) {
	n := 3 + fracBytes(fsp)
	if fsp > 6 || len(data) < n {
		return nil, 0, fmt.Errorf("time2(%d) needs %d bytes, %d left", fsp, n, len(data))
	}
	// The packed form is (seconds-part << 24) + microseconds, signed.
	var packed int64
	intpart := int64(beUint(data[:3])) - 0x800000
	switch fsp {
	case 0:
		packed = intpart << 24
	case 1, 2:
		frac := int64(data[3])
		if intpart < 0 && frac != 0 {
			intpart++
			frac -= 0x100
		}
		packed = intpart<<24 + frac*10000
	case 3, 4:
		frac := int64(beUint(data[3:5]))
		if intpart < 0 && frac != 0 {
			intpart++
			frac -= 0x10000
		}
		packed = intpart<<24 + frac*100
	case 5, 6:
		packed = int64(beUint(data[:6])) - 0x800000000000
	}
	neg := packed < 0
	if neg {
		packed = -packed
	}
	hms := packed >> 24
	us := int(packed % (1 << 24))
	return formatTime(neg, int(hms>>12%(1<<10)), int(hms>>6%64), int(hms%64), us, fsp), n, nil
}

// formatTime writes a TIME value like the SQL driver does.
func formatTime(neg bool, h, m, s, us, fsp int) string {
	var sb strings.Builder
	if neg {
		sb.WriteByte('-')
	}
	fmt.Fprintf(&sb, "%02d:%02d:%02d", h, m, s)
	if fsp > 0 {
		frac := fmt.Sprintf("%06d", us)
		sb.WriteByte('.')
		sb.WriteString(frac[:fsp])
	}
	return sb.String()
}

var dig2bytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// decimalSize is the storage size of DECIMAL(precision, scale).
func decimalSize(precision, scale int) int {
	intg := precision - scale
	return intg/9*4 + dig2bytes[intg%9] + scale/9*4 + dig2bytes[scale%9]
}

// decodeDecimal reads MySQL's binary DECIMAL: groups of nine digits in
// four big-endian bytes, leading and trailing partial groups in fewer
// bytes, the sign in the inverted top bit and negative values stored as
// the one's complement.
func decodeDecimal(precision, scale int, data []byte) (any, int, error) {
	if precision == 0 || scale > precision {
		return nil, 0, fmt.Errorf("decimal(%d,%d) metadata invalid", precision, scale)
	}
	size := decimalSize(precision, scale)
	if len(data) < size {
		return nil, 0, fmt.Errorf("decimal(%d,%d) needs %d bytes, %d left", precision, scale, size, len(data))
	}
	buf := append([]byte(nil), data[:size]...)
	neg := buf[0]&0x80 == 0
	buf[0] ^= 0x80
	if neg {
		for i := range buf {
			buf[i] ^= 0xff
		}
	}
	intg := precision - scale
	var digits strings.Builder
	pos := 0
	group := func(nbytes, width int) {
		v := beUint(buf[pos : pos+nbytes])
		pos += nbytes
		s := strconv.FormatUint(v, 10)
		for i := len(s); i < width; i++ {
			digits.WriteByte('0')
		}
		digits.WriteString(s)
	}
	if x := intg % 9; x > 0 {
		group(dig2bytes[x], x)
	}
	for i := 0; i < intg/9; i++ {
		group(4, 9)
	}
	intPart := strings.TrimLeft(digits.String(), "0")
	if intPart == "" {
		intPart = "0"
	}
	digits.Reset()
	for i := 0; i < scale/9; i++ {
		group(4, 9)
	}
	if x := scale % 9; x > 0 {
		group(dig2bytes[x], x)
	}
	out := intPart
	if scale > 0 {
		out += "." + digits.String()
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return change.Decimal(out), size, nil
}

package binlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/dualwrite/dualwrite/internal/change"
)

// errBadJSON means a MySQL binary JSON document that does not follow the
// format: the row event is corrupt or from a server whose format this
// decoder does not know, so capture cannot go on with it.
var errBadJSON = errors.New("malformed binary JSON")

// Type bytes of MySQL's binary JSON format.
const (
	jsonSmallObject byte = 0x00
	jsonLargeObject byte = 0x01
	jsonSmallArray  byte = 0x02
	jsonLargeArray  byte = 0x03
	jsonLiteral     byte = 0x04
	jsonInt16       byte = 0x05
	jsonUint16      byte = 0x06
	jsonInt32       byte = 0x07
	jsonUint32      byte = 0x08
	jsonInt64       byte = 0x09
	jsonUint64      byte = 0x0a
	jsonDouble      byte = 0x0b
	jsonString      byte = 0x0c
	jsonOpaque      byte = 0x0f
)

// Values of a jsonLiteral.
const (
	jsonNull  byte = 0x00
	jsonTrue  byte = 0x01
	jsonFalse byte = 0x02
)

// jsonMaxDepth is the deepest container nesting MySQL accepts in a
// document; anything deeper cannot have come from the server.
const jsonMaxDepth = 100

// decodeJSON converts a binary JSON document (a JSON column's value in a
// row event) into the text MySQL prints for it: members in stored order,
// ": " after keys and ", " between items. The empty document is what MySQL
// stores for a JSON column forced to a value in non-strict mode, and it
// reads it back as the JSON null literal.
func decodeJSON(doc []byte) (string, error) {
	if len(doc) == 0 {
		return "null", nil
	}
	out, err := appendJSONValue(make([]byte, 0, 2*len(doc)), doc[0], doc[1:], 0)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func badJSON(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadJSON, fmt.Sprintf(format, args...))
}

// appendJSONValue writes the value of type typ stored at the start of
// data; depth is the number of containers around it.
func appendJSONValue(out []byte, typ byte, data []byte, depth int) ([]byte, error) {
	need := func(n int) error {
		if len(data) < n {
			return badJSON("value of type 0x%02x needs %d bytes, %d left", typ, n, len(data))
		}
		return nil
	}
	switch typ {
	case jsonSmallObject, jsonLargeObject, jsonSmallArray, jsonLargeArray:
		return appendJSONContainer(out, typ, data, depth)
	case jsonLiteral:
		if err := need(1); err != nil {
			return nil, err
		}
		switch data[0] {
		case jsonNull:
			return append(out, "null"...), nil
		case jsonTrue:
			return append(out, "true"...), nil
		case jsonFalse:
			return append(out, "false"...), nil
		}
		return nil, badJSON("literal 0x%02x", data[0])
	case jsonInt16:
		if err := need(2); err != nil {
			return nil, err
		}
		return strconv.AppendInt(out, int64(int16(binary.LittleEndian.Uint16(data))), 10), nil
	case jsonUint16:
		if err := need(2); err != nil {
			return nil, err
		}
		return strconv.AppendUint(out, uint64(binary.LittleEndian.Uint16(data)), 10), nil
	case jsonInt32:
		if err := need(4); err != nil {
			return nil, err
		}
		return strconv.AppendInt(out, int64(int32(binary.LittleEndian.Uint32(data))), 10), nil
	case jsonUint32:
		if err := need(4); err != nil {
			return nil, err
		}
		return strconv.AppendUint(out, uint64(binary.LittleEndian.Uint32(data)), 10), nil
	case jsonInt64:
		if err := need(8); err != nil {
			return nil, err
		}
		return strconv.AppendInt(out, int64(binary.LittleEndian.Uint64(data)), 10), nil
	case jsonUint64:
		if err := need(8); err != nil {
			return nil, err
		}
		return strconv.AppendUint(out, binary.LittleEndian.Uint64(data), 10), nil
	case jsonDouble:
		if err := need(8); err != nil {
			return nil, err
		}
		return appendJSONDouble(out, math.Float64frombits(binary.LittleEndian.Uint64(data)))
	case jsonString:
		s, err := jsonLengthPrefixed(data)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(s) {
			return nil, badJSON("string is not valid UTF-8")
		}
		return appendJSONQuoted(out, s), nil
	case jsonOpaque:
		if err := need(1); err != nil {
			return nil, err
		}
		v, err := jsonLengthPrefixed(data[1:])
		if err != nil {
			return nil, err
		}
		return appendJSONOpaque(out, data[0], v)
	}
	return nil, badJSON("unknown type 0x%02x", typ)
}

// appendJSONContainer writes an object or array. Its header is the
// element count and the byte size (2 bytes each in the small form, 4 in
// the large), then for objects one key entry per member (offset, 2-byte
// length), then one value entry per item (type byte and an offset or an
// inlined scalar). Offsets count from the start of the container.
func appendJSONContainer(out []byte, typ byte, data []byte, depth int) ([]byte, error) {
	if depth >= jsonMaxDepth {
		return nil, badJSON("containers nested deeper than %d", jsonMaxDepth)
	}
	large := typ == jsonLargeObject || typ == jsonLargeArray
	object := typ == jsonSmallObject || typ == jsonLargeObject
	w := 2
	if large {
		w = 4
	}
	if len(data) < 2*w {
		return nil, badJSON("container header needs %d bytes, %d left", 2*w, len(data))
	}
	count := jsonUint(data, w)
	size := jsonUint(data[w:], w)
	if size > uint64(len(data)) {
		return nil, badJSON("container of %d bytes, %d left", size, len(data))
	}
	data = data[:size]
	keyEntry, valueEntry := uint64(0), uint64(1+w)
	if object {
		keyEntry = uint64(w + 2)
	}
	// count < 2^32 and entries are at most 7 bytes: no overflow.
	header := uint64(2*w) + count*(keyEntry+valueEntry)
	if header > size {
		return nil, badJSON("container header of %d entries exceeds its %d bytes", count, size)
	}
	open, closing := byte('['), byte(']')
	if object {
		open, closing = '{', '}'
	}
	out = append(out, open)
	for i := range count {
		if i > 0 {
			out = append(out, ", "...)
		}
		if object {
			ke := uint64(2*w) + i*keyEntry
			off := jsonUint(data[ke:], w)
			n := uint64(binary.LittleEndian.Uint16(data[ke+uint64(w):]))
			if off < header || off+n > size {
				return nil, badJSON("key %d at %d+%d outside its container of %d bytes", i, off, n, size)
			}
			key := data[off : off+n]
			if !utf8.Valid(key) {
				return nil, badJSON("key %d is not valid UTF-8", i)
			}
			out = appendJSONQuoted(out, key)
			out = append(out, ": "...)
		}
		ve := uint64(2*w) + count*keyEntry + i*valueEntry
		vt := data[ve]
		field := data[ve+1 : ve+1+uint64(w)]
		var err error
		if jsonInlined(vt, large) {
			out, err = appendJSONValue(out, vt, field, depth+1)
		} else {
			off := jsonUint(field, w)
			if off < header || off >= size {
				return nil, badJSON("value %d at %d outside its container of %d bytes", i, off, size)
			}
			out, err = appendJSONValue(out, vt, data[off:], depth+1)
		}
		if err != nil {
			return nil, err
		}
	}
	return append(out, closing), nil
}

// jsonInlined reports whether a value of type typ sits in its value
// entry rather than at an offset: literals and 16-bit integers always,
// 32-bit integers in the large form, whose entries have room for them.
func jsonInlined(typ byte, large bool) bool {
	switch typ {
	case jsonLiteral, jsonInt16, jsonUint16:
		return true
	case jsonInt32, jsonUint32:
		return large
	}
	return false
}

// jsonUint reads a little-endian unsigned integer of w (2 or 4) bytes.
func jsonUint(b []byte, w int) uint64 {
	if w == 2 {
		return uint64(binary.LittleEndian.Uint16(b))
	}
	return uint64(binary.LittleEndian.Uint32(b))
}

// jsonLengthPrefixed returns the bytes after a variable-length length:
// seven bits a byte, least significant first, the high bit set on every
// byte but the last, at most five bytes for a 32-bit length.
func jsonLengthPrefixed(data []byte) ([]byte, error) {
	var n uint64
	for i := 0; i < 5; i++ {
		if i >= len(data) {
			return nil, badJSON("length truncated")
		}
		b := data[i]
		n |= uint64(b&0x7f) << (7 * i)
		if b&0x80 != 0 {
			continue
		}
		if n > math.MaxUint32 {
			return nil, badJSON("length %d exceeds 32 bits", n)
		}
		rest := data[i+1:]
		if n > uint64(len(rest)) {
			return nil, badJSON("data of %d bytes, %d left", n, len(rest))
		}
		return rest[:n], nil
	}
	return nil, badJSON("length field longer than 5 bytes")
}

// appendJSONQuoted writes s as a JSON string, escaping what MySQL
// escapes: the quote, the backslash and the control characters below
// 0x20 (short forms where JSON has them, else \u00xx in lower case).
func appendJSONQuoted(out, s []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, c := range s {
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			if c < 0x20 {
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}

// Field width MySQL gives its double-to-text conversion for JSON, and the
// largest decimal exponent it writes without switching to the e form.
const (
	jsonDoubleWidth   = 34
	jsonMaxFixedDecpt = 15
)

// appendJSONDouble writes a double as MySQL does in JSON: the shortest
// digits that read back as the same double, in positional form when that
// fits the field width and the exponent is moderate (1e-14 up to 1e15,
// or a longer number with a fraction), else as d.ddde[-]x; ".0" follows a
// positional integer so that it reads as a double.
func appendJSONDouble(out []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, badJSON("double %v is not a JSON number", f)
	}
	width := jsonDoubleWidth
	if f < 0 {
		width--
	}
	if math.Signbit(f) {
		out = append(out, '-')
	}
	// Shortest round-trip digits and the decimal point position: the value
	// is 0.DIGITS × 10^decpt.
	e := strconv.AppendFloat(nil, math.Abs(f), 'e', -1, 64)
	mant, exp, _ := bytes.Cut(e, []byte{'e'})
	x, err := strconv.Atoi(string(exp))
	if err != nil {
		return nil, badJSON("double %v: %v", f, err)
	}
	digits := make([]byte, 0, len(mant))
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	n, decpt := len(digits), x+1
	var fixedLen int
	switch {
	case decpt <= 0:
		fixedLen = n - decpt + 2
	case decpt < n:
		fixedLen = n + 1
	default:
		fixedLen = decpt
	}
	if fixedLen <= width && decpt > -jsonMaxFixedDecpt && (decpt <= jsonMaxFixedDecpt || n > decpt) {
		switch {
		case decpt <= 0:
			out = append(out, '0', '.')
			for range -decpt {
				out = append(out, '0')
			}
			out = append(out, digits...)
		case decpt < n:
			out = append(out, digits[:decpt]...)
			out = append(out, '.')
			out = append(out, digits[decpt:]...)
		default:
			out = append(out, digits...)
			for range decpt - n {
				out = append(out, '0')
			}
			out = append(out, '.', '0')
		}
		return out, nil
	}
	out = append(out, digits[0])
	if n > 1 {
		out = append(out, '.')
		out = append(out, digits[1:]...)
	}
	out = append(out, 'e')
	return strconv.AppendInt(out, int64(decpt-1), 10), nil
}

// appendJSONOpaque writes a value that JSON keeps in a MySQL column type
// of its own: DECIMAL as a number with its scale, temporal values as
// strings (always six fractional digits, as MySQL prints them), a string
// as a string, and anything else as "base64:typeN:DATA", MySQL's form.
func appendJSONOpaque(out []byte, ft byte, data []byte) ([]byte, error) {
	switch ft {
	case TypeNewDecimal:
		// Precision and scale bytes, then the binary DECIMAL.
		if len(data) < 2 {
			return nil, badJSON("decimal needs 2 bytes of precision and scale, %d left", len(data))
		}
		v, _, err := decodeDecimal(int(data[0]), int(data[1]), data[2:])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadJSON, err)
		}
		return append(out, v.(change.Decimal)...), nil
	case TypeDate, TypeTime, TypeDateTime, TypeTimestamp:
		if len(data) != 8 {
			return nil, badJSON("temporal value of %d bytes, want 8", len(data))
		}
		out = append(out, '"')
		out = appendPackedTemporal(out, ft, int64(binary.LittleEndian.Uint64(data)))
		return append(out, '"'), nil
	case TypeVarString:
		if !utf8.Valid(data) {
			return nil, badJSON("string is not valid UTF-8")
		}
		return appendJSONQuoted(out, data), nil
	}
	text := fmt.Appendf(nil, "base64:type%d:", ft)
	enc := base64.StdEncoding.EncodeToString(data)
	// MySQL's base64 breaks the line after every 76 characters.
	for len(enc) > 76 {
		text = append(text, enc[:76]...)
		text = append(text, '\n')
		enc = enc[76:]
	}
	text = append(text, enc...)
	return appendJSONQuoted(out, text), nil
}

// appendPackedTemporal writes MySQL's packed temporal integer: the
// magnitude is (whole part << 24) | microseconds, the whole part being
// hour<<12 | minute<<6 | second for TIME, and for the others
// ((year*13 + month) << 5 | day) << 17 | hour<<12 | minute<<6 | second.
func appendPackedTemporal(out []byte, ft byte, packed int64) []byte {
	u := uint64(packed)
	neg := packed < 0
	if neg {
		u = -u
	}
	us := u % (1 << 24)
	whole := u >> 24
	if ft == TypeTime {
		if neg {
			out = append(out, '-')
		}
		return fmt.Appendf(out, "%02d:%02d:%02d.%06d", whole>>12%(1<<10), whole>>6%64, whole%64, us)
	}
	ymd, hms := whole>>17, whole%(1<<17)
	ym := ymd >> 5
	out = fmt.Appendf(out, "%04d-%02d-%02d", ym/13, ym%13, ymd%32)
	if ft == TypeDate {
		return out
	}
	return fmt.Appendf(out, " %02d:%02d:%02d.%06d", hms>>12, hms>>6%64, hms%64, us)
}

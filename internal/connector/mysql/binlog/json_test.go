package binlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// The documents below are built byte by byte from the binary JSON format:
// a type byte, then the value; containers start with element count and
// byte size (2 bytes each when small, 4 when large), key entries (offset,
// 2-byte length), value entries (type, offset or inlined scalar), then
// keys and values, offsets counting from the container's first byte.

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func jsonDoubleDoc(f float64) []byte { return cat([]byte{jsonDouble}, le64(math.Float64bits(f))) }

// packedDateTime is MySQL's packed temporal integer for a date and time.
func packedDateTime(y, mo, d, h, mi, s, us int64) int64 {
	ymd := (y*13+mo)<<5 | d
	hms := h<<12 | mi<<6 | s
	return (ymd<<17|hms)<<24 | us
}

// packedTime is MySQL's packed temporal integer for a TIME.
func packedTime(neg bool, h, mi, s, us int64) int64 {
	v := (h<<12|mi<<6|s)<<24 | us
	if neg {
		return -v
	}
	return v
}

// jsonStringDoc is a string document with a one-byte length.
func jsonStringDoc(s string) []byte {
	if len(s) > 127 {
		panic("test strings use a one-byte length")
	}
	return cat([]byte{jsonString, byte(len(s))}, []byte(s))
}

func opaque(ft byte, data []byte) []byte {
	if len(data) > 127 {
		panic("test opaque values use a one-byte length")
	}
	return cat([]byte{jsonOpaque, ft, byte(len(data))}, data)
}

// smallObjectAB is {"a": 1, "b": [1, 2]}: header 4 + 2 key entries of 4
// + 2 value entries of 3 = 18 bytes, keys at 18 and 19, the array at 20.
var smallObjectAB = cat(
	[]byte{jsonSmallObject},
	le16(2), le16(30),
	le16(18), le16(1), le16(19), le16(1),
	[]byte{jsonInt16}, le16(1),
	[]byte{jsonSmallArray}, le16(20),
	[]byte("ab"),
	le16(2), le16(10), []byte{jsonInt16}, le16(1), []byte{jsonInt16}, le16(2),
)

// largeObjectAB is {"a": -1, "b": [4294967295, "x"]} in the large form:
// header 8 + 2 key entries of 6 + 2 value entries of 5 = 30 bytes; the
// int32 and uint32 sit in their value entries.
var largeObjectAB = cat(
	[]byte{jsonLargeObject},
	le32(2), le32(52),
	le32(30), le16(1), le32(31), le16(1),
	[]byte{jsonInt32}, le32(0xffffffff),
	[]byte{jsonLargeArray}, le32(32),
	[]byte("ab"),
	// The array: header 8 + 2 entries of 5 = 18, the string at 18.
	le32(2), le32(20),
	[]byte{jsonUint32}, le32(0xffffffff),
	[]byte{jsonString}, le32(18),
	[]byte{1, 'x'},
)

// nestedArray is n arrays, each holding the next, the innermost empty.
func nestedArray(n int) []byte {
	body := cat(le16(0), le16(4))
	for i := 1; i < n; i++ {
		body = cat(le16(1), le16(uint16(7+len(body))), []byte{jsonSmallArray}, le16(7), body)
	}
	return cat([]byte{jsonSmallArray}, body)
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) // 200 bytes: a two-byte length
	tests := []struct {
		name string
		doc  []byte
		want string
	}{
		{"empty document", nil, `null`},
		{"null", []byte{jsonLiteral, jsonNull}, `null`},
		{"true", []byte{jsonLiteral, jsonTrue}, `true`},
		{"false", []byte{jsonLiteral, jsonFalse}, `false`},
		{"int16", cat([]byte{jsonInt16}, le16(0xfffe)), `-2`},
		{"uint16", cat([]byte{jsonUint16}, le16(0xffff)), `65535`},
		{"int32", cat([]byte{jsonInt32}, le32(0x80000000)), `-2147483648`},
		{"uint32", cat([]byte{jsonUint32}, le32(0xffffffff)), `4294967295`},
		{"int64 min", cat([]byte{jsonInt64}, le64(1<<63)), `-9223372036854775808`},
		{"int64 max", cat([]byte{jsonInt64}, le64(1<<63-1)), `9223372036854775807`},
		{"uint64 max", cat([]byte{jsonUint64}, le64(math.MaxUint64)), `18446744073709551615`},
		{"double 1.5", jsonDoubleDoc(1.5), `1.5`},
		{"double integral", jsonDoubleDoc(1), `1.0`},
		{"double zero", jsonDoubleDoc(0), `0.0`},
		{"double negative", jsonDoubleDoc(-0.25), `-0.25`},
		{"double 0.1", jsonDoubleDoc(0.1), `0.1`},
		{"double 1e14", jsonDoubleDoc(1e14), `100000000000000.0`},
		{"double 1e15", jsonDoubleDoc(1e15), `1e15`},
		{"double 1.5e15", jsonDoubleDoc(1.5e15), `1.5e15`},
		{"double 1e-14", jsonDoubleDoc(1e-14), `0.00000000000001`},
		{"double 1e-15", jsonDoubleDoc(1e-15), `0.000000000000001`},
		{"double 1e-16", jsonDoubleDoc(1e-16), `1e-16`},
		{"double -1e100", jsonDoubleDoc(-1e100), `-1e100`},
		{"double 1.2345e-7", jsonDoubleDoc(1.2345e-7), `0.00000012345`},
		{"double max", jsonDoubleDoc(math.MaxFloat64), `1.7976931348623157e308`},
		{"double min subnormal", jsonDoubleDoc(5e-324), `5e-324`},
		{"double 17 digits", jsonDoubleDoc(1234567890123456.8), `1234567890123456.8`},
		{"double 17 digits integral", jsonDoubleDoc(12345678901234568), `1.2345678901234568e16`},
		{"string", []byte{jsonString, 3, 'a', 'b', 'c'}, `"abc"`},
		{"empty string", []byte{jsonString, 0}, `""`},
		{"string escapes", jsonStringDoc("\"q\\\n\t\b\f\r\x01\x1f/\x7f"), `"\"q\\\n\t\b\f\r\u0001\u001f/` + "\x7f" + `"`},
		{"string unicode", jsonStringDoc("ü😀"), `"ü😀"`},
		{"string two-byte length", cat([]byte{jsonString, 200&0x7f | 0x80, 200 >> 7}, []byte(long)), `"` + long + `"`},
		{"decimal", opaque(TypeNewDecimal, []byte{4, 2, 0x8c, 0x22}), `12.34`},
		{"decimal negative", opaque(TypeNewDecimal, []byte{3, 2, 0x7e, 0xcd}), `-1.50`},
		{"decimal fraction only", opaque(TypeNewDecimal, []byte{2, 2, 0x85}), `0.05`},
		{"date", opaque(TypeDate, le64(uint64(packedDateTime(2024, 2, 29, 0, 0, 0, 0)))), `"2024-02-29"`},
		{"datetime", opaque(TypeDateTime, le64(uint64(packedDateTime(2024, 2, 29, 13, 45, 6, 123456)))), `"2024-02-29 13:45:06.123456"`},
		{"timestamp", opaque(TypeTimestamp, le64(uint64(packedDateTime(1999, 12, 31, 23, 59, 59, 0)))), `"1999-12-31 23:59:59.000000"`},
		{"time", opaque(TypeTime, le64(uint64(packedTime(false, 1, 2, 3, 0)))), `"01:02:03.000000"`},
		{"time negative", opaque(TypeTime, le64(uint64(packedTime(true, 838, 59, 59, 500000)))), `"-838:59:59.500000"`},
		{"opaque string", opaque(TypeVarString, []byte("hi")), `"hi"`},
		{"opaque blob", opaque(TypeBlob, []byte{0, 1, 2}), `"base64:type252:AAEC"`},
		{"opaque empty", opaque(TypeBit, nil), `"base64:type16:"`},
		{"opaque 76 base64 chars", opaque(TypeBlob, make([]byte, 57)), `"base64:type252:` + strings.Repeat("A", 76) + `"`},
		{"opaque line break", opaque(TypeBlob, make([]byte, 58)), `"base64:type252:` + strings.Repeat("A", 76) + `\nAA=="`},
		{"small object", smallObjectAB, `{"a": 1, "b": [1, 2]}`},
		{"large object", largeObjectAB, `{"a": -1, "b": [4294967295, "x"]}`},
		{"empty object", cat([]byte{jsonSmallObject}, le16(0), le16(4)), `{}`},
		{"empty large array", cat([]byte{jsonLargeArray}, le32(0), le32(8)), `[]`},
		// [70000, null, {}, []]: header 4 + 4 entries of 3 = 16; a small
		// container keeps an int32 at an offset.
		{"small array offsets", cat(
			[]byte{jsonSmallArray}, le16(4), le16(28),
			[]byte{jsonInt32}, le16(16),
			[]byte{jsonLiteral}, le16(uint16(jsonNull)),
			[]byte{jsonSmallObject}, le16(20),
			[]byte{jsonSmallArray}, le16(24),
			le32(70000), le16(0), le16(4), le16(0), le16(4),
		), `[70000, null, {}, []]`},
		// [-5, 18446744073709551615, 2.5, true, false, -3, 3]: header 4 + 7
		// entries of 3 = 25; the 8-byte values follow.
		{"small array scalars", cat(
			[]byte{jsonSmallArray}, le16(7), le16(49),
			[]byte{jsonInt64}, le16(25),
			[]byte{jsonUint64}, le16(33),
			[]byte{jsonDouble}, le16(41),
			[]byte{jsonLiteral}, le16(uint16(jsonTrue)),
			[]byte{jsonLiteral}, le16(uint16(jsonFalse)),
			[]byte{jsonInt16}, le16(0xfffd),
			[]byte{jsonUint16}, le16(3),
			le64(uint64(0xfffffffffffffffb)), le64(math.MaxUint64), le64(math.Float64bits(2.5)),
		), `[-5, 18446744073709551615, 2.5, true, false, -3, 3]`},
		// {"ключ": "😀", "a\"b": {"x": [true]}}: keys and the value of a
		// nested object escaped and kept in stored order.
		{"nested unicode keys", cat(
			[]byte{jsonSmallObject}, le16(2), le16(53),
			le16(18), le16(8), le16(26), le16(3),
			[]byte{jsonString}, le16(29),
			[]byte{jsonSmallObject}, le16(34),
			[]byte("ключ"), []byte(`a"b`),
			[]byte{4}, []byte("😀"),
			// {"x": [true]} at 34: header 4 + 4 + 3 = 11, key at 11, array at 12.
			le16(1), le16(19), le16(11), le16(1), []byte{jsonSmallArray}, le16(12), []byte("x"),
			le16(1), le16(7), []byte{jsonLiteral}, le16(uint16(jsonTrue)),
		), `{"ключ": "😀", "a\"b": {"x": [true]}}`},
		// A key of 300 bytes needs both bytes of its length: header 4 + 4 +
		// 3 = 11, the key at 11, true inlined.
		{"long key", cat(
			[]byte{jsonSmallObject}, le16(1), le16(311),
			le16(11), le16(300), []byte{jsonLiteral}, le16(uint16(jsonTrue)),
			[]byte(strings.Repeat("k", 300)),
		), `{"` + strings.Repeat("k", 300) + `": true}`},
		{"deepest nesting", nestedArray(jsonMaxDepth), strings.Repeat("[", jsonMaxDepth) + strings.Repeat("]", jsonMaxDepth)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeJSON(tc.doc)
			if err != nil {
				t.Fatalf("decodeJSON(% x): %v", tc.doc, err)
			}
			if got != tc.want {
				t.Errorf("decodeJSON(% x)\n got %s\nwant %s", tc.doc, got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("output %s is not valid JSON", got)
			}
		})
	}
}

func TestDecodeJSONMalformed(t *testing.T) {
	t.Parallel()
	// withByte returns doc with byte i replaced.
	withByte := func(doc []byte, i int, b byte) []byte {
		out := append([]byte(nil), doc...)
		out[i] = b
		return out
	}
	tests := []struct {
		name string
		doc  []byte
	}{
		{"unknown top-level type", []byte{0x0d}},
		{"unknown type 0x10", []byte{0x10, 0}},
		{"literal 3", []byte{jsonLiteral, 3}},
		{"literal missing", []byte{jsonLiteral}},
		{"int16 truncated", []byte{jsonInt16, 1}},
		{"uint32 truncated", []byte{jsonUint32, 1, 2, 3}},
		{"int64 truncated", []byte{jsonInt64, 1, 2, 3}},
		{"double truncated", []byte{jsonDouble, 0, 0, 0, 0, 0, 0, 0xf0}},
		{"double NaN", jsonDoubleDoc(math.NaN())},
		{"double infinity", jsonDoubleDoc(math.Inf(-1))},
		{"string longer than data", []byte{jsonString, 4, 'a', 'b', 'c'}},
		{"string length truncated", []byte{jsonString, 0x80}},
		{"string length missing", []byte{jsonString}},
		{"string length of 6 bytes", []byte{jsonString, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"string length over 32 bits", []byte{jsonString, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"string not UTF-8", []byte{jsonString, 2, 0xc3, 0x28}},
		{"opaque without type", []byte{jsonOpaque}},
		{"opaque truncated", []byte{jsonOpaque, TypeBlob, 5, 1}},
		{"decimal without scale", opaque(TypeNewDecimal, []byte{4})},
		{"decimal truncated", opaque(TypeNewDecimal, []byte{4, 2, 0x8c})},
		{"decimal zero precision", opaque(TypeNewDecimal, []byte{0, 0, 0x80})},
		{"decimal scale above precision", opaque(TypeNewDecimal, []byte{2, 3, 0x80, 0, 0})},
		{"date of 7 bytes", opaque(TypeDate, make([]byte, 7))},
		{"datetime of 9 bytes", opaque(TypeDateTime, make([]byte, 9))},
		{"opaque string not UTF-8", opaque(TypeVarString, []byte{0xff})},
		{"object header truncated", []byte{jsonSmallObject, 1, 0, 20}},
		{"large array header truncated", cat([]byte{jsonLargeArray}, le32(0), le16(8))},
		{"object size beyond data", withByte(smallObjectAB, 3, 31)},
		{"object size below header", withByte(smallObjectAB, 3, 17)},
		{"object count beyond header", withByte(smallObjectAB, 1, 5)},
		{"array count of 65535", cat([]byte{jsonSmallArray}, le16(0xffff), le16(4))},
		{"large count of 2^32-1", cat([]byte{jsonLargeObject}, le32(0xffffffff), le32(8))},
		{"key offset beyond size", withByte(smallObjectAB, 5, 30)},
		{"key offset in header", withByte(smallObjectAB, 5, 4)},
		{"key length beyond size", withByte(smallObjectAB, 11, 12)},
		{"key not UTF-8", withByte(smallObjectAB, 19, 0xff)},
		{"value offset beyond size", withByte(smallObjectAB, 17, 30)},
		{"value offset in header", withByte(smallObjectAB, 17, 2)},
		{"unknown value type", withByte(smallObjectAB, 13, 0x0e)},
		{"inlined literal 9", withByte(withByte(smallObjectAB, 13, jsonLiteral), 14, 9)},
		{"nested array size beyond parent", withByte(smallObjectAB, 23, 11)},
		{"nested string beyond container", withByte(largeObjectAB, 51, 2)},
		// An int32 read from the container's own header would decode.
		{"int32 offset in header", cat([]byte{jsonSmallArray}, le16(1), le16(7), []byte{jsonInt32}, le16(0))},
		{"string offset at container end", cat([]byte{jsonSmallArray}, le16(1), le16(7), []byte{jsonString}, le16(7))},
		{"too deep", nestedArray(jsonMaxDepth + 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeJSON(tc.doc)
			if err == nil {
				t.Fatalf("decodeJSON(% x) = %s, want an error", tc.doc, got)
			}
			if !errors.Is(err, errBadJSON) {
				t.Errorf("decodeJSON(% x): error %v does not wrap errBadJSON", tc.doc, err)
			}
		})
	}
}

// TestDecodeValueJSON reads JSON columns as row events carry them: a
// length prefix of Meta bytes, then the binary document.
func TestDecodeValueJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		meta uint16
		data []byte
		want string
		used int
	}{
		{"four-byte prefix", 4, cat(le32(uint32(len(smallObjectAB))), smallObjectAB, []byte{0xaa}), `{"a": 1, "b": [1, 2]}`, 4 + len(smallObjectAB)},
		{"two-byte prefix", 2, cat(le16(2), []byte{jsonLiteral, jsonTrue}, []byte{1, 2}), `true`, 4},
		{"one-byte prefix", 1, []byte{3, jsonInt16, 0x39, 0x30}, `12345`, 4},
		{"empty value", 4, le32(0), `null`, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, used, err := decodeValue(ColumnType{Type: TypeJSON, Meta: tc.meta}, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := got.(string); !ok || s != tc.want || used != tc.used {
				t.Errorf("got %#v (%d bytes), want %q (%d bytes)", got, used, tc.want, tc.used)
			}
		})
	}
	for _, data := range [][]byte{
		le16(5),                                 // prefix truncated
		cat(le32(3), []byte{jsonInt16, 1}),      // document shorter than its prefix says
		cat(le32(2), []byte{jsonInt16, 1}),      // document truncated inside
		cat(le32(2), []byte{0x0e, 1}),           // unknown type
		cat(le32(3), []byte{jsonLiteral, 7, 0}), // bad literal
		cat(le32(1), []byte{jsonSmallObject}),   // container header truncated
	} {
		if got, _, err := decodeValue(ColumnType{Type: TypeJSON, Meta: 4}, data); err == nil {
			t.Errorf("decodeValue(% x) = %#v, want an error", data, got)
		}
	}
}

// FuzzDecodeJSON checks that no input makes the decoder panic or write
// anything but valid JSON.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		{jsonLiteral, jsonTrue},
		{jsonString, 3, 'a', 'b', 'c'},
		jsonDoubleDoc(1e15),
		smallObjectAB,
		largeObjectAB,
		nestedArray(5),
		opaque(TypeNewDecimal, []byte{4, 2, 0x8c, 0x22}),
		opaque(TypeDateTime, le64(uint64(packedDateTime(2024, 2, 29, 13, 45, 6, 123456)))),
		opaque(TypeTime, le64(uint64(packedTime(true, 838, 59, 59, 500000)))),
		opaque(TypeBlob, make([]byte, 58)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := decodeJSON(doc)
		if err != nil {
			if !errors.Is(err, errBadJSON) {
				t.Fatalf("decodeJSON(% x): error %v does not wrap errBadJSON", doc, err)
			}
			return
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("decodeJSON(% x) = %s: not valid JSON", doc, got)
		}
	})
}

package binlog

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// Byte sequences below are built from the documented storage formats.
func TestDecodeValue(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			panic(err)
		}
		return tm
	}
	tests := []struct {
		name string
		col  ColumnType
		data []byte
		want any
		used int
	}{
		{"tiny -1", ColumnType{Type: TypeTiny}, []byte{0xff}, int64(-1), 1},
		{"short -2", ColumnType{Type: TypeShort}, []byte{0xfe, 0xff}, int64(-2), 2},
		{"int24 -8388608", ColumnType{Type: TypeInt24}, []byte{0x00, 0x00, 0x80}, int64(-8388608), 3},
		{"int24 8388607", ColumnType{Type: TypeInt24}, []byte{0xff, 0xff, 0x7f}, int64(8388607), 3},
		{"long", ColumnType{Type: TypeLong}, []byte{0x01, 0x02, 0x03, 0x04}, int64(0x04030201), 4},
		{"longlong -1", ColumnType{Type: TypeLongLong}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(-1), 8},
		{"year 2024", ColumnType{Type: TypeYear}, []byte{124}, int64(2024), 1},
		{"float 1.5", ColumnType{Type: TypeFloat, Meta: 4}, []byte{0x00, 0x00, 0xc0, 0x3f}, 1.5, 4},
		{"double -0.25", ColumnType{Type: TypeDouble, Meta: 8}, binary.LittleEndian.AppendUint64(nil, 0xbfd0000000000000), -0.25, 8},
		// DECIMAL(10,4) 12.3400: intg 6 digits → 3 bytes, frac 4 digits → 2 bytes.
		{"decimal 12.3400", ColumnType{Type: TypeNewDecimal, Precision: 10, Scale: 4}, []byte{0x80, 0x00, 0x0c, 0x0d, 0x48}, change.Decimal("12.3400"), 5},
		// Negative: one's complement of 12.3400.
		{"decimal -12.3400", ColumnType{Type: TypeNewDecimal, Precision: 10, Scale: 4}, []byte{0x7f, 0xff, 0xf3, 0xf2, 0xb7}, change.Decimal("-12.3400"), 5},
		// DECIMAL(19,4) 123456789012345.6789: intg 15 = 6 digits (3 bytes) + 9 (4 bytes), frac 4 (2 bytes).
		{"decimal(19,4)", ColumnType{Type: TypeNewDecimal, Precision: 19, Scale: 4},
			[]byte{0x80 | 0x01, 0xe2, 0x40, 0x2f, 0x07, 0x5f, 0x79, 0x1a, 0x85}, change.Decimal("123456789012345.6789"), 9},
		{"decimal zero", ColumnType{Type: TypeNewDecimal, Precision: 5, Scale: 2}, []byte{0x80, 0x00, 0x00}, change.Decimal("0.00"), 3},
		// DATE: day | month<<5 | year<<9, 3 bytes little-endian.
		{"date", ColumnType{Type: TypeDate}, le24(29 | 2<<5 | 2024<<9), utc("2024-02-29 00:00:00"), 3},
		{"zero date", ColumnType{Type: TypeDate}, []byte{0, 0, 0}, time.Time{}, 3},
		{"datetime2(0)", ColumnType{Type: TypeDateTime2}, datetime2(2024, 5, 6, 7, 8, 9, 0, 0), utc("2024-05-06 07:08:09"), 5},
		{"datetime2(6)", ColumnType{Type: TypeDateTime2, Meta: 6}, datetime2(1999, 12, 31, 23, 59, 59, 999999, 6), utc("1999-12-31 23:59:59.999999"), 8},
		{"datetime2(3)", ColumnType{Type: TypeDateTime2, Meta: 3}, datetime2(2000, 1, 1, 0, 0, 0, 123000, 3), utc("2000-01-01 00:00:00.123"), 7},
		{"timestamp2(6)", ColumnType{Type: TypeTimestamp2, Meta: 6}, append(be(uint64(utc("2038-01-19 03:14:08").Unix()), 4), be(1, 3)...), utc("2038-01-19 03:14:08.000001"), 7},
		{"timestamp2 zero", ColumnType{Type: TypeTimestamp2}, []byte{0, 0, 0, 0}, time.Time{}, 4},
		// TIME2: (h<<12 | m<<6 | s) + 0x800000, big-endian, then the fraction.
		{"time2(0)", ColumnType{Type: TypeTime2}, be(uint64(12<<12|34<<6|56+0x800000), 3), "12:34:56", 3},
		{"time2(0) negative", ColumnType{Type: TypeTime2}, be(uint64(0x800000-(1<<12|0<<6|1)), 3), "-01:00:01", 3},
		{"time2(6)", ColumnType{Type: TypeTime2, Meta: 6}, be(uint64((838<<12|59<<6|59)<<24+500000+0x800000000000), 6), "838:59:59.500000", 6},
		{"varchar short", ColumnType{Type: TypeVarchar, Meta: 80}, []byte{3, 'a', 'b', 'c', 'x'}, []byte("abc"), 4},
		{"varchar long", ColumnType{Type: TypeVarchar, Meta: 1020}, []byte{4, 0, 0xf0, 0x9f, 0x98, 0x80}, []byte("😀"), 6},
		{"blob 4", ColumnType{Type: TypeBlob, Meta: 4}, []byte{2, 0, 0, 0, 0, 0xff}, []byte{0, 0xff}, 6},
		{"string", ColumnType{Type: TypeString, Meta: 36}, []byte{2, 'h', 'i'}, []byte("hi"), 3},
		{"bit(10)", ColumnType{Type: TypeBit, Bits: 10}, []byte{0x02, 0x01}, []byte{0x02, 0x01}, 2},
		{"enum", ColumnType{Type: TypeEnum, Meta: 1}, []byte{2}, Enum(2), 1},
		{"set", ColumnType{Type: TypeSet, Meta: 1}, []byte{5}, Set(5), 1},
		{"old datetime", ColumnType{Type: TypeDateTime}, binary.LittleEndian.AppendUint64(nil, 20240506070809), utc("2024-05-06 07:08:09"), 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, used, err := decodeValue(tc.col, tc.data)
			if err != nil {
				t.Fatalf("decodeValue: %v", err)
			}
			if used != tc.used {
				t.Errorf("used %d bytes, want %d", used, tc.used)
			}
			switch w := tc.want.(type) {
			case []byte:
				if string(got.([]byte)) != string(w) {
					t.Errorf("got %x, want %x", got, w)
				}
			case time.Time:
				g, ok := got.(time.Time)
				if !ok || !g.Equal(w) || (!g.IsZero() && g.Location() != time.UTC) {
					t.Errorf("got %v, want %v", got, w)
				}
			default:
				if got != tc.want {
					t.Errorf("got %#v, want %#v", got, tc.want)
				}
			}
		})
	}
}

func TestDecodeValueTruncated(t *testing.T) {
	t.Parallel()
	for _, c := range []ColumnType{{Type: TypeLong}, {Type: TypeNewDecimal, Precision: 10, Scale: 2}, {Type: TypeDateTime2, Meta: 6}, {Type: TypeBlob, Meta: 2}, {Type: TypeJSON, Meta: 4}} {
		if _, _, err := decodeValue(c, []byte{1}); err == nil {
			t.Errorf("type %d: no error on truncated or unsupported data", c.Type)
		}
	}
}

func TestAsUnsigned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ  byte
		v    int64
		want uint64
	}{{TypeTiny, -1, 255}, {TypeShort, -1, 65535}, {TypeInt24, -1, 16777215}, {TypeLong, -1, 4294967295}, {TypeLongLong, -1, 18446744073709551615}} {
		if got := AsUnsigned(tc.typ, tc.v); got != tc.want {
			t.Errorf("AsUnsigned(%d, %d) = %d, want %d", tc.typ, tc.v, got, tc.want)
		}
	}
}

// TestParseRowsEvent builds a format description, a table map and an
// update rows event byte by byte, with CRC32 checksums, and parses them.
func TestParseRowsEvent(t *testing.T) {
	t.Parallel()
	p := NewParser()
	// Format description: binlog v4, server version, post-header lengths
	// (TABLE_MAP 8, rows v1 8), checksum algorithm CRC32.
	var fde []byte
	fde = binary.LittleEndian.AppendUint16(fde, 4)
	ver := make([]byte, 50)
	copy(ver, "10.11.19-MariaDB")
	fde = append(fde, ver...)
	fde = append(fde, 0, 0, 0, 0, headerLen)
	phl := make([]byte, 164)
	phl[QueryEvent-1] = 13
	phl[TableMapEvent-1] = 8
	phl[UpdateRowsEventV1-1] = 8
	fde = append(fde, phl...)
	fde = append(fde, 1) // CRC32
	ev, err := p.Parse(event(FormatDescriptionEvent, 0, fde))
	if err != nil {
		t.Fatalf("format description: %v", err)
	}
	if ev.Body.(*FormatDescription).ChecksumAlg != 1 {
		t.Fatalf("checksum algorithm not read")
	}
	// TABLE_MAP: table id 42, db "d", table "t", columns LONG, VARCHAR(20).
	var tm []byte
	tm = append(tm, 42, 0, 0, 0, 0, 0, 0, 0)
	tm = append(tm, 1, 'd', 0, 1, 't', 0)
	tm = append(tm, 2, TypeLong, TypeVarchar)
	tm = append(tm, 2, 20, 0) // metadata: varchar max length 20
	tm = append(tm, 0x02)     // column 2 nullable
	ev, err = p.Parse(event(TableMapEvent, 0, tm))
	if err != nil {
		t.Fatalf("table map: %v", err)
	}
	if got := ev.Body.(*TableMap); got.Schema != "d" || got.Table != "t" || got.Columns[1].Meta != 20 || !got.Nullable[1] {
		t.Fatalf("table map = %+v", got)
	}
	// UPDATE_ROWS v1: (1, 'a') → (1, NULL).
	var rows []byte
	rows = append(rows, 42, 0, 0, 0, 0, 0, 1, 0)
	rows = append(rows, 2, 0x03, 0x03)
	rows = append(rows, 0x00, 1, 0, 0, 0, 1, 'a')
	rows = append(rows, 0x02, 1, 0, 0, 0)
	ev, err = p.Parse(event(UpdateRowsEventV1, FlagSkipReplication, rows))
	if err != nil {
		t.Fatalf("rows: %v", err)
	}
	r := ev.Body.(*Rows)
	if r.Kind != RowsUpdate || len(r.Rows) != 2 || r.Rows[0][0] != int64(1) || string(r.Rows[0][1].([]byte)) != "a" || r.Rows[1][1] != nil {
		t.Fatalf("rows = %+v", r)
	}
	if ev.Flags&FlagSkipReplication == 0 {
		t.Errorf("skip-replication flag lost")
	}
	// A corrupted event fails its checksum.
	bad := event(XIDEvent, 0, binary.LittleEndian.AppendUint64(nil, 7))
	bad[headerLen] ^= 1
	if _, err := p.Parse(bad); err == nil {
		t.Errorf("corrupted event parsed without a checksum error")
	}
	// MariaDB GTID event, standalone.
	var g []byte
	g = binary.LittleEndian.AppendUint64(g, 99)
	g = binary.LittleEndian.AppendUint32(g, 0)
	g = append(g, GTIDStandalone, 0, 0, 0, 0, 0, 0)
	ev, err = p.Parse(event(MariaGTIDEvent, 0, g))
	if err != nil {
		t.Fatal(err)
	}
	if gt := ev.Body.(*GTID); gt.ID != "0-1-99" || !gt.Standalone {
		t.Errorf("gtid = %+v", gt)
	}
}

// event frames a body with a v4 header (server id 1) and a CRC32.
func event(t EventType, flags uint16, body []byte) []byte {
	size := headerLen + len(body) + 4
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 1700000000)
	b = append(b, byte(t))
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = binary.LittleEndian.AppendUint32(b, 1000)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func le24(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }

func be(v uint64, n int) []byte {
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// datetime2 encodes the documented DATETIME2 layout: 1 sign bit, 17 bits
// year*13+month, 5 day, 5 hour, 6 minute, 6 second, then the fraction.
func datetime2(y, mo, d, h, mi, s, us, fsp int) []byte {
	ym := uint64(y*13 + mo)
	v := uint64(1)<<39 | ym<<22 | uint64(d)<<17 | uint64(h)<<12 | uint64(mi)<<6 | uint64(s)
	out := be(v, 5)
	switch fsp {
	case 1, 2:
		out = append(out, byte(us/10000))
	case 3, 4:
		out = append(out, be(uint64(us/100), 2)...)
	case 5, 6:
		out = append(out, be(uint64(us), 3)...)
	}
	return out
}

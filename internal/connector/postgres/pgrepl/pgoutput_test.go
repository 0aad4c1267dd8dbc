package pgrepl

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
)

// msg builds a message body field by field, as the "Logical Replication
// Message Formats" chapter lays it out.
type msg []byte

func (m msg) b(c byte) msg { return append(m, c) }
func (m msg) i16(v uint16) msg {
	return binary.BigEndian.AppendUint16(m, v)
}
func (m msg) i32(v uint32) msg {
	return binary.BigEndian.AppendUint32(m, v)
}
func (m msg) i64(v uint64) msg {
	return binary.BigEndian.AppendUint64(m, v)
}
func (m msg) s(v string) msg { return append(append(m, v...), 0) }
func (m msg) text(v string) msg {
	return m.b('t').i32(uint32(len(v))).raw(v)
}
func (m msg) raw(v string) msg { return append(m, v...) }

var commitTime = time.Date(2026, 11, 22, 10, 30, 0, 123456000, time.UTC)

func TestDecode(t *testing.T) {
	t.Parallel()
	us := uint64(MicrosFromTime(commitTime))
	tests := []struct {
		name string
		in   msg
		want Message
	}{
		{"begin", msg{}.b('B').i64(0x1_0000_0010).i64(us).i32(777),
			Begin{FinalLSN: 0x1_0000_0010, CommitTime: commitTime, XID: 777}},
		{"commit", msg{}.b('C').b(0).i64(0x20).i64(0x48).i64(us),
			Commit{CommitLSN: 0x20, EndLSN: 0x48, CommitTime: commitTime}},
		{"origin", msg{}.b('O').i64(0x99).s("dualwrite"),
			Origin{CommitLSN: 0x99, Name: "dualwrite"}},
		{"relation", msg{}.b('R').i32(16384).s("public").s("account").b('d').i16(2).
			b(1).s("id").i32(OIDInt8).i32(math.MaxUint32).
			b(0).s("näme").i32(OIDVarchar).i32(104),
			Relation{ID: 16384, Namespace: "public", Name: "account", ReplicaIdentity: 'd', Columns: []RelationColumn{
				{Key: true, Name: "id", TypeOID: OIDInt8, TypMod: -1},
				{Name: "näme", TypeOID: OIDVarchar, TypMod: 104},
			}}},
		{"type", msg{}.b('Y').i32(90001).s("public").s("mood"),
			Type{OID: 90001, Namespace: "public", Name: "mood"}},
		{"insert", msg{}.b('I').i32(16384).b('N').i16(3).text("1").b('n').text("héllo"),
			Insert{RelationID: 16384, New: Tuple{{Kind: 't', Data: []byte("1")}, {Kind: 'n'}, {Kind: 't', Data: []byte("héllo")}}}},
		{"update without old", msg{}.b('U').i32(5).b('N').i16(2).text("1").b('u'),
			Update{RelationID: 5, New: Tuple{{Kind: 't', Data: []byte("1")}, {Kind: 'u'}}}},
		{"update with key", msg{}.b('U').i32(5).b('K').i16(2).text("1").b('n').b('N').i16(2).text("2").text("x"),
			Update{RelationID: 5, OldKind: 'K', Old: Tuple{{Kind: 't', Data: []byte("1")}, {Kind: 'n'}},
				New: Tuple{{Kind: 't', Data: []byte("2")}, {Kind: 't', Data: []byte("x")}}}},
		{"update with full old", msg{}.b('U').i32(5).b('O').i16(1).text("a").b('N').i16(1).text("b"),
			Update{RelationID: 5, OldKind: 'O', Old: Tuple{{Kind: 't', Data: []byte("a")}}, New: Tuple{{Kind: 't', Data: []byte("b")}}}},
		{"delete", msg{}.b('D').i32(5).b('K').i16(1).text("42"),
			Delete{RelationID: 5, OldKind: 'K', Old: Tuple{{Kind: 't', Data: []byte("42")}}}},
		{"truncate", msg{}.b('T').i32(2).b(1).i32(5).i32(6),
			Truncate{Options: 1, RelationIDs: []uint32{5, 6}}},
		{"message", msg{}.b('M').b(1).i64(0x77).s("dualwrite.apply").i32(2).raw("hi"),
			LogicalMessage{Transactional: true, LSN: 0x77, Prefix: "dualwrite.apply", Content: []byte("hi")}},
		{"empty text value", msg{}.b('I').i32(1).b('N').i16(1).text(""),
			Insert{RelationID: 1, New: Tuple{{Kind: 't', Data: []byte{}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(tc.in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decode =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   msg
	}{
		{"empty", msg{}},
		{"unknown type", msg{}.b('Z')},
		{"short begin", msg{}.b('B').i64(1)},
		{"unterminated string", msg{}.b('O').i64(1).raw("abc")},
		{"text longer than message", msg{}.b('I').i32(1).b('N').i16(1).b('t').i32(10).raw("ab")},
		{"bad tuple kind", msg{}.b('I').i32(1).b('N').i16(1).b('x')},
		{"insert without N", msg{}.b('I').i32(1).b('K').i16(0)},
		{"delete without K or O", msg{}.b('D').i32(1).b('N').i16(0)},
		{"truncate count too large", msg{}.b('T').i32(1000).b(0).i32(1)},
		{"relation cut short", msg{}.b('R').i32(1).s("public").s("t").b('d').i16(3).b(1).s("id")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if m, err := Decode(tc.in); err == nil {
				t.Fatalf("Decode(%q) = %#v, want an error", []byte(tc.in), m)
			}
		})
	}
}

func TestDecodeText(t *testing.T) {
	t.Parallel()
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		oid  uint32
		in   string
		want any
	}{
		{OIDInt2, "-32768", int64(-32768)},
		{OIDInt4, "2147483647", int64(2147483647)},
		{OIDInt8, "-9223372036854775808", int64(math.MinInt64)},
		{OIDNumeric, "123456789012345678901234567890.1234", change.Decimal("123456789012345678901234567890.1234")},
		{OIDNumeric, "NaN", change.Decimal("NaN")},
		{OIDFloat4, "1.5", 1.5},
		{OIDFloat8, "-1e+300", -1e300},
		{OIDFloat8, "Infinity", math.Inf(1)},
		{OIDBool, "t", true},
		{OIDBool, "f", false},
		{OIDText, "日本語 🎉", "日本語 🎉"},
		{OIDVarchar, "", ""},
		{OIDBpchar, "ab  ", "ab  "},
		{OIDName, "pg_class", "pg_class"},
		{OIDUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{OIDJSON, `{"a": 1}`, `{"a": 1}`},
		{OIDJSONB, `{"a": [1, 2]}`, `{"a": [1, 2]}`},
		{OIDBytea, `\x00ff10`, []byte{0, 0xff, 0x10}},
		{OIDBytea, `\x`, []byte{}},
		{OIDDate, "2024-02-29", ts("2024-02-29T00:00:00Z")},
		{OIDDate, "infinity", "infinity"},
		{OIDTimestamp, "2024-02-29 13:14:15.123456", ts("2024-02-29T13:14:15.123456Z")},
		{OIDTimestamp, "2024-02-29 13:14:15", ts("2024-02-29T13:14:15Z")},
		{OIDTimestamptz, "2024-02-29 13:14:15.5+00", ts("2024-02-29T13:14:15.5Z")},
		{OIDTimestamptz, "2024-02-29 13:14:15+05:30", ts("2024-02-29T07:44:15Z")},
		{OIDTimestamptz, "1900-01-01 00:00:00+00:09:21", ts("1899-12-31T23:50:39Z")},
		{1007, "{1,2,3}", "{1,2,3}"}, // int4[]
		{1186, "1 day 02:00:00", "1 day 02:00:00"},
		{99999, "opaque", "opaque"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeText(tc.oid, []byte(tc.in))
			if err != nil {
				t.Fatalf("DecodeText(%d, %q): %v", tc.oid, tc.in, err)
			}
			if gt, ok := got.(time.Time); ok {
				if gt.Location() != time.UTC || !gt.Equal(tc.want.(time.Time)) {
					t.Fatalf("DecodeText(%d, %q) = %v, want %v in UTC", tc.oid, tc.in, gt, tc.want)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodeText(%d, %q) = %#v, want %#v", tc.oid, tc.in, got, tc.want)
			}
		})
	}
}

func TestDecodeTextErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		oid uint32
		in  string
	}{
		{OIDInt8, "12a"}, {OIDInt4, "99999999999999999999"}, {OIDFloat8, "x"},
		{OIDBool, "true"}, {OIDBytea, "abc"}, {OIDBytea, `\xzz`},
		{OIDDate, "29/02/2024"}, {OIDTimestamp, "2024-02-29T13:14:15"}, {OIDTimestamptz, "2024-02-29 13:14:15"},
	}
	for _, tc := range tests {
		if v, err := DecodeText(tc.oid, []byte(tc.in)); err == nil {
			t.Errorf("DecodeText(%d, %q) = %#v, want an error", tc.oid, tc.in, v)
		}
	}
}

func TestEncodeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want []byte
	}{
		{nil, nil},
		{true, []byte("t")},
		{int64(-5), []byte("-5")},
		{2.5, []byte("2.5")},
		{math.NaN(), []byte("NaN")},
		{math.Inf(-1), []byte("-Infinity")},
		{change.Decimal("1.2300"), []byte("1.2300")},
		{"é", []byte("é")},
		{[]byte{0xde, 0xad}, []byte(`\xdead`)},
		{time.Date(2024, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)), []byte("2024-01-02 02:04:05.000006Z")},
	}
	for _, tc := range tests {
		got, err := EncodeText(tc.in)
		if err != nil {
			t.Fatalf("EncodeText(%#v): %v", tc.in, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("EncodeText(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := EncodeText("a\x00b"); err == nil {
		t.Error("EncodeText with NUL: want an error")
	}
	if _, err := EncodeText(struct{}{}); err == nil {
		t.Error("EncodeText(struct{}{}): want an error")
	}
}

func TestLSN(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", s, err)
		}
		if l.String() != s {
			t.Errorf("ParseLSN(%q).String() = %q", s, l.String())
		}
	}
	if l, _ := ParseLSN("16/B374D848"); l != 0x16_B374D848 {
		t.Errorf("ParseLSN value = %x", uint64(l))
	}
	for _, s := range []string{"", "16", "x/1", "1/100000000"} {
		if _, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q): want an error", s)
		}
	}
}

func TestParseCopyData(t *testing.T) {
	t.Parallel()
	us := uint64(MicrosFromTime(commitTime))
	x, err := ParseCopyData(msg{}.b('w').i64(10).i64(20).i64(us).raw("Bxyz"))
	if err != nil {
		t.Fatal(err)
	}
	if d := x.(*XLogData); d.WALStart != 10 || d.ServerEnd != 20 || !d.ServerTime.Equal(commitTime) || string(d.Data) != "Bxyz" {
		t.Errorf("XLogData = %+v", d)
	}
	k, err := ParseCopyData(msg{}.b('k').i64(30).i64(us).b(1))
	if err != nil {
		t.Fatal(err)
	}
	if ka := k.(*Keepalive); ka.ServerEnd != 30 || !ka.ReplyRequested {
		t.Errorf("Keepalive = %+v", ka)
	}
	if _, err := ParseCopyData(msg{}.b('k').i64(30)); err == nil {
		t.Error("short keepalive: want an error")
	}
	st := StandbyStatus(0x1234, commitTime, true)
	want := msg{}.b('r').i64(0x1234).i64(0x1234).i64(0x1234).i64(us).b(1)
	if !reflect.DeepEqual([]byte(st), []byte(want)) {
		t.Errorf("StandbyStatus = %x, want %x", st, want)
	}
}

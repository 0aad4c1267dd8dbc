package mapping

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

type dec = change.Decimal

func TestEqual(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CEST", 2*3600)
	at := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		a, b any
		want bool
	}{
		{nil, nil, true},
		{nil, "", false},
		{nil, int64(0), false},
		{int64(0), nil, false},
		{int64(1), float64(1), true},
		{int64(1), dec("1.00"), true},
		{float64(1), dec("1.00"), true},
		{dec("1.10"), dec("1.1"), true},
		{dec("1.10"), dec("1.11"), false},
		{dec("-0.50"), float64(-0.5), true},
		{dec("-5"), int64(-5), true},
		{dec("-5"), int64(5), false},
		{float64(1.1), dec("1.1"), true},
		{float64(0.1) + float64(0.2), dec("0.3"), false},
		{dec("12345678901234567890"), dec("12345678901234567890.000"), true},
		{dec("12345678901234567890"), dec("12345678901234567891"), false},
		{dec("18446744073709551615"), uint64(math.MaxUint64), true},
		{int64(math.MaxInt64), dec("9223372036854775807"), true},
		{int64(math.MaxInt64), float64(math.MaxInt64), false},
		{int64(math.MinInt64), dec("-9223372036854775808"), true},
		{dec("1e3"), int64(1000), true},
		{dec("NaN"), dec("NaN"), true},
		{float64(math.NaN()), float64(math.NaN()), false},
		{math.Inf(1), math.Inf(1), true},
		{math.Inf(1), dec("1"), false},
		{int(7), int64(7), true},
		{float32(1.1), dec("1.1"), true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", []byte("abc"), true},
		{[]byte("abc"), "abc", true},
		{[]byte{0, 1}, []byte{0, 1}, true},
		{[]byte{0, 1}, []byte{0, 2}, false},
		{"1", int64(1), false},
		{true, int64(1), true},
		{false, int64(0), true},
		{true, int64(2), false},
		{int64(1), true, true},
		{dec("1.0"), true, true},
		{true, "true", false},
		{true, true, true},
		{true, false, false},
		{at, at.In(paris), true},
		{at, at.Add(time.Nanosecond), false},
		{time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 2, 0, 0, 0, paris), true},
		{at, at.Format(time.RFC3339), false},
		{"žluťoučký 🐴", "žluťoučký 🐴", true},
	}
	for _, tc := range cases {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("Equal(%#v, %#v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Equal(tc.b, tc.a); got != tc.want {
			t.Errorf("Equal(%#v, %#v) = %v, want %v (reversed)", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	want := change.Row{"a": int64(1), "b": dec("2.50"), "c": nil, "d": "x", "e": "only in want"}
	have := change.Row{"a": dec("1.0"), "b": float64(2.5), "c": "not null", "d": "y", "z": "only in have"}
	if got := Diff(want, have); !reflect.DeepEqual(got, []string{"c", "d", "e"}) {
		t.Errorf("Diff = %v", got)
	}
	if got := Diff(change.Row{"a": nil}, change.Row{"a": nil}); len(got) != 0 {
		t.Errorf("Diff of equal rows = %v", got)
	}
	if got := Diff(change.Row{"a": nil}, change.Row{}); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("missing NULL column = %v", got)
	}
}

func TestCoerce(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	if ny == nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	at := time.Date(2024, 1, 15, 10, 30, 0, 123000000, time.UTC)
	long := strings.Repeat("ř", 10000)
	cases := []struct {
		in   any
		kind connector.Kind
		want any // nil with fail means an error is expected
		fail bool
	}{
		{nil, kInt, nil, false},
		{nil, kText, nil, false},
		{"12", kInt, int64(12), false},
		{" -12 ", kInt, int64(-12), false},
		{"12.000", kInt, int64(12), false},
		{"12.5", kInt, nil, true},
		{"twelve", kInt, nil, true},
		{dec("42.00"), kInt, int64(42), false},
		{dec("18446744073709551615"), kInt, dec("18446744073709551615"), false},
		{"-9223372036854775808", kInt, int64(math.MinInt64), false},
		{float64(3), kInt, int64(3), false},
		{float64(3.5), kInt, nil, true},
		{math.NaN(), kInt, nil, true},
		{true, kInt, int64(1), false},
		{int(5), kInt, int64(5), false},
		{uint64(math.MaxUint64), kInt, dec("18446744073709551615"), false},
		{at, kInt, nil, true},
		{int64(3), kFlt, float64(3), false},
		{dec("2.25"), kFlt, float64(2.25), false},
		{"-1.5e2", kFlt, float64(-150), false},
		{"abc", kFlt, nil, true},
		{int64(-7), kDec, dec("-7"), false},
		{float64(0.1), kDec, dec("0.1"), false},
		{float64(-1234.5), kDec, dec("-1234.5"), false},
		{"1.50", kDec, dec("1.50"), false},
		{"+1.5e3", kDec, dec("1500"), false},
		{"1.5e-3", kDec, dec("0.0015"), false},
		{".5", kDec, dec("0.5"), false},
		{"-0.5E1", kDec, dec("-5"), false},
		{"1/3", kDec, nil, true},
		{"", kDec, nil, true},
		{math.Inf(1), kDec, nil, true},
		{dec("99999999999999999999.9999"), kDec, dec("99999999999999999999.9999"), false},
		{int64(-12), kText, "-12", false},
		{dec("1.50"), kText, "1.50", false},
		{float64(2.5), kText, "2.5", false},
		{true, kText, "true", false},
		{at, kText, "2024-01-15T10:30:00.123Z", false},
		{time.Date(2024, 1, 15, 5, 30, 0, 0, ny), kText, "2024-01-15T10:30:00Z", false},
		{[]byte("raw"), kText, "raw", false},
		{`it's "quoted" \ 🐴`, kText, `it's "quoted" \ 🐴`, false},
		{long, kText, long, false},
		{"x", connector.KindOther, "x", false},
		{"true", kBool, true, false},
		{"1", kBool, true, false},
		{"off", kBool, false, false},
		{int64(1), kBool, true, false},
		{int64(0), kBool, false, false},
		{dec("1.000"), kBool, true, false},
		{int64(2), kBool, nil, true},
		{"maybe", kBool, nil, true},
		{"abc", kByte, []byte("abc"), false},
		{[]byte{0, 255}, kByte, []byte{0, 255}, false},
		{int64(1), kByte, nil, true},
		{"2024-01-15T10:30:00.123Z", kTime, at, false},
		{"2024-01-15T11:30:00.123+01:00", kTime, at, false},
		{"2024-01-15 10:30:00.123", kTime, at, false},
		{"2024-01-15 10:30:00", kTime, at.Truncate(time.Second), false},
		{"2024-01-15 05:30:00.123-05", kTime, at, false},
		{"2024-01-15", kTime, time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2024, 1, 15, 5, 30, 0, 123000000, ny), kTime, at, false},
		{"15/01/2024", kTime, nil, true},
		{int64(1700000000), kTime, nil, true},
		{"2024-01-15T23:30:00-05:00", kDate, time.Date(2024, 1, 16, 0, 0, 0, 0, time.UTC), false},
		{at, kDate, time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC), false},
		{"  6F9619FF-8B86-D011-B42D-00C04FC964FF ", kUUID, "6f9619ff-8b86-d011-b42d-00c04fc964ff", false},
		{[]byte{0x6f, 0x96, 0x19, 0xff, 0x8b, 0x86, 0xd0, 0x11, 0xb4, 0x2d, 0x00, 0xc0, 0x4f, 0xc9, 0x64, 0xff}, kUUID, "6f9619ff-8b86-d011-b42d-00c04fc964ff", false},
		{int64(1), kUUID, nil, true},
		{`{"a": [1, "ü"]}`, kJSON, `{"a": [1, "ü"]}`, false},
		{int64(3), kJSON, "3", false},
		{dec("3.10"), kJSON, "3.10", false},
		{true, kJSON, "true", false},
		{at, kJSON, `"2024-01-15T10:30:00.123Z"`, false},
		{struct{}{}, "", struct{}{}, false},
	}
	for _, tc := range cases {
		got, err := Coerce(tc.in, tc.kind)
		if tc.fail {
			if err == nil {
				t.Errorf("Coerce(%#v, %s) = %#v, want an error", tc.in, tc.kind, got)
			} else if problem.CodeOf(err) != problem.TransformFailed {
				t.Errorf("Coerce(%#v, %s) error %v has code %q, want DW3003", tc.in, tc.kind, err, problem.CodeOf(err))
			}
			continue
		}
		if err != nil {
			t.Errorf("Coerce(%#v, %s): %v", tc.in, tc.kind, err)
			continue
		}
		if gt, ok := got.(time.Time); ok {
			wt, _ := tc.want.(time.Time)
			if !gt.Equal(wt) || gt.Location() != time.UTC {
				t.Errorf("Coerce(%#v, %s) = %v, want %v in UTC", tc.in, tc.kind, gt, wt)
			}
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Coerce(%#v, %s) = %#v (%T), want %#v (%T)", tc.in, tc.kind, got, got, tc.want, tc.want)
		}
	}
}

func TestCoerceErrorSaysWhatToDo(t *testing.T) {
	t.Parallel()
	_, err := Coerce("abc", kInt)
	if err == nil || !strings.Contains(err.Error(), "DW3003") || !strings.Contains(err.Error(), "value_map or expression") || !strings.Contains(err.Error(), `"abc"`) {
		t.Errorf("error = %v", err)
	}
	_, err = Coerce(strings.Repeat("x", 500), kInt)
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("long values are not shortened in errors: %d chars", len(err.Error()))
	}
}

func TestFingerprintAgreesWithEqual(t *testing.T) {
	ts := time.Date(2024, 3, 31, 1, 30, 0, 123000, time.FixedZone("X", 3600))
	same := [][2]any{
		{int64(5), change.Decimal("5.000")},
		{float64(1.5), change.Decimal("1.50")},
		{"abc", []byte("abc")},
		{true, int64(1)},
		{ts, ts.UTC()},
		{int32(7), int64(7)},
	}
	for _, p := range same {
		if !Equal(p[0], p[1]) {
			t.Fatalf("%v and %v: not Equal", p[0], p[1])
		}
		a, okA := Fingerprint(p[0])
		b, okB := Fingerprint(p[1])
		if !okA || !okB || a != b {
			t.Errorf("Fingerprint(%#v)=%q, Fingerprint(%#v)=%q; want the same", p[0], a, p[1], b)
		}
	}
	differ := [][2]any{{int64(5), int64(6)}, {"a", "A"}, {change.Decimal("1.5"), change.Decimal("1.05")}, {"1", int64(1)}}
	for _, p := range differ {
		a, _ := Fingerprint(p[0])
		b, _ := Fingerprint(p[1])
		if a == b {
			t.Errorf("Fingerprint(%#v) = Fingerprint(%#v) = %q", p[0], p[1], a)
		}
	}
	if _, ok := Fingerprint(struct{}{}); ok {
		t.Error("an unknown type got a fingerprint")
	}
}

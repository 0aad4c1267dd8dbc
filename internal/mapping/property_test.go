package mapping

import (
	"math/big"
	"reflect"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// roundTripTables are two tables that differ in names and types.
func roundTripTables() (map[string]connector.Table, map[string]connector.Table) {
	left := map[string]connector.Table{"l": table("l", []string{"id"}, nil,
		col("id", kInt, "nn"), col("status", kText), col("kind", kInt), col("flag", kBool),
		col("note", kText), col("amount", kDec), col("at", kTime), col("day", kDate), col("ref", kUUID))}
	right := map[string]connector.Table{"r": table("r", []string{"rid"}, nil,
		col("rid", kDec, "nn"), col("state", kInt), col("category", kText), col("flag", kInt),
		col("memo", connector.KindOther), col("amount", kDec), col("at", kTime), col("day", kText), col("ref", kText))}
	return left, right
}

func decimalOf(mant int64, scale int) change.Decimal {
	r := new(big.Rat).SetFrac(big.NewInt(mant), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	return change.Decimal(r.FloatString(scale))
}

// TestRoundTrip: for a both-ways map with value maps, translating a row
// to the other side and back gives the original values.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	left, right := roundTripTables()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "entries")
		statuses := rapid.SliceOfNDistinct(rapid.StringMatching(`[A-Za-zÀ-ž' ]{1,10}`), n, n, rapid.ID[string]).Draw(t, "statuses")
		states := rapid.SliceOfNDistinct(rapid.Int64Range(-1000, 1000), n, n, rapid.ID[int64]).Draw(t, "states")
		kinds := rapid.SliceOfNDistinct(rapid.Int64(), n, n, rapid.ID[int64]).Draw(t, "kinds")
		cats := rapid.SliceOfNDistinct(rapid.String(), n, n, rapid.ID[string]).Draw(t, "categories")
		var statusMap, kindMap [][2]string
		for i := 0; i < n; i++ {
			statusMap = append(statusMap, [2]string{statuses[i], strconv.FormatInt(states[i], 10)})
			kindMap = append(kindMap, [2]string{strconv.FormatInt(kinds[i], 10), cats[i]})
		}
		cfg := &config.Config{Maps: []config.Map{{
			Name: "rt", Left: "l", Right: "r",
			Key: []config.KeyColumn{{Left: config.Columns{"id"}, Right: config.Columns{"rid"}}},
			Columns: []config.ColumnMap{
				{Left: "status", Right: "state", ValueMapPairs: statusMap},
				{Left: "kind", Right: "category", ValueMapPairs: kindMap},
				{Left: "flag", Right: "flag"},
				{Left: "note", Right: "memo"},
				{Left: "amount", Right: "amount"},
				{Left: "at", Right: "at"},
				{Left: "day", Right: "day"},
				{Left: "ref", Right: "ref"},
			},
		}}}
		m := mustCompile(t, cfg, "rt", left, right)

		orNull := func(label string, v any) any {
			if rapid.IntRange(0, 4).Draw(t, label+" null") == 0 {
				return nil
			}
			return v
		}
		at := time.Unix(rapid.Int64Range(-62135596800, 253402300799).Draw(t, "at"), rapid.Int64Range(0, 999999999).Draw(t, "ns")).UTC()
		row := change.Row{
			"id":     rapid.Int64().Draw(t, "id"),
			"status": orNull("status", rapid.SampledFrom(statuses).Draw(t, "status")),
			"kind":   orNull("kind", rapid.SampledFrom(kinds).Draw(t, "kind")),
			"flag":   orNull("flag", rapid.Bool().Draw(t, "flag")),
			"note":   orNull("note", rapid.String().Draw(t, "note")),
			"amount": orNull("amount", decimalOf(rapid.Int64().Draw(t, "mant"), rapid.IntRange(0, 8).Draw(t, "scale"))),
			"at":     orNull("at time", at),
			"day":    orNull("day", time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)),
			"ref":    orNull("ref", rapid.StringMatching(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).Draw(t, "ref")),
		}
		there, err := m.Translate(Left, row)
		if err != nil {
			t.Fatalf("left to right: %v", err)
		}
		back, err := m.Translate(Right, there.Values)
		if err != nil {
			t.Fatalf("right to left of %v: %v", there.Values, err)
		}
		if d := Diff(row, back.Values); len(d) > 0 {
			t.Fatalf("columns %v changed: %v → %v → %v", d, row, there.Values, back.Values)
		}
		for c, v := range row {
			if reflect.TypeOf(v) != reflect.TypeOf(back.Values[c]) {
				t.Fatalf("column %s came back as %T, not %T", c, back.Values[c], v)
			}
		}
		// And from the right: a translated row goes back to itself.
		again, err := m.Translate(Left, back.Values)
		if err != nil {
			t.Fatal(err)
		}
		if d := Diff(there.Values, again.Values); len(d) > 0 {
			t.Fatalf("right columns %v changed: %v → %v", d, there.Values, again.Values)
		}
	})
}

// TestEqualCoerceAgree: a value coerced to a kind and back equals itself
// under Equal, for numbers of every size and sign.
func TestEqualCoerceAgree(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		d := decimalOf(rapid.Int64().Draw(t, "mant"), rapid.IntRange(0, 12).Draw(t, "scale"))
		text, err := Coerce(d, kText)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Coerce(text, kDec)
		if err != nil || !Equal(back, d) || back != d {
			t.Fatalf("%v → %v → %v (%v)", d, text, back, err)
		}
		i := rapid.Int64().Draw(t, "int")
		asDec, _ := Coerce(i, kDec)
		asInt, err := Coerce(asDec, kInt)
		if err != nil || asInt != i || !Equal(asDec, i) {
			t.Fatalf("%d → %v → %v (%v)", i, asDec, asInt, err)
		}
		if !Equal(i, change.Decimal(string(asDec.(change.Decimal))+".000")) {
			t.Fatalf("%d != %s.000", i, asDec)
		}
	})
}

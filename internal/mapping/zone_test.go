package mapping

import (
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// TestLocalDatetimeRecipe checks the recipe of docs/CONFIG.md ("Times and
// time zones") for a DATETIME column that holds local wall-clock time:
// the two expressions turn an instant into Tokyo's wall clock and back,
// to the microsecond, before 1970 too, and keep NULL.
func TestLocalDatetimeRecipe(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Link: config.Link{Name: "l", Left: config.Side{Name: "erp", Driver: "postgres"}, Right: config.Side{Name: "crm", Driver: "mysql"}},
		Maps: []config.Map{{
			Name: "items", Left: "items", Right: "item",
			Key: []config.KeyColumn{{Left: config.Columns{"code"}, Right: config.Columns{"itemcode"}}},
			Columns: []config.ColumnMap{
				{Left: "code", Right: "itemcode"},
				{Left: "seen_at", Right: "lastseen",
					LeftToRight: `seen_at == nil ? nil : seen_at.In(timezone("Asia/Tokyo")).Format("2006-01-02 15:04:05.999999")`,
					RightToLeft: `lastseen == nil ? nil : date(lastseen.Format("2006-01-02 15:04:05.999999"), "2006-01-02 15:04:05.999999", "Asia/Tokyo")`},
			},
		}},
	}
	left := map[string]connector.Table{"items": table("items", []string{"code"}, nil, col("code", kText, "nn"), col("seen_at", kTime))}
	right := map[string]connector.Table{"item": table("item", []string{"itemcode"}, nil, col("itemcode", kText, "nn"), col("lastseen", kTime))}
	m := mustCompile(t, cfg, "items", left, right)
	for _, tc := range []struct{ instant, wall any }{
		{time.Date(2024, 3, 10, 7, 30, 0, 123456000, time.UTC), time.Date(2024, 3, 10, 16, 30, 0, 123456000, time.UTC)},
		{time.Date(1969, 12, 31, 20, 0, 0, 1000, time.UTC), time.Date(1970, 1, 1, 5, 0, 0, 1000, time.UTC)},
		{nil, nil},
	} {
		got, err := m.Translate(Left, change.Row{"code": "A", "seen_at": tc.instant})
		if err != nil {
			t.Fatal(err)
		}
		if w := got.Values["lastseen"]; !Equal(w, tc.wall) {
			t.Errorf("left to right: %v → %v, want the wall clock %v", tc.instant, w, tc.wall)
		}
		back, err := m.Translate(Right, change.Row{"itemcode": "A", "lastseen": tc.wall})
		if err != nil {
			t.Fatal(err)
		}
		if v := back.Values["seen_at"]; !Equal(v, tc.instant) {
			t.Errorf("right to left: %v → %v, want %v", tc.wall, v, tc.instant)
		}
	}
}

package wire_test

import (
	"testing"

	"github.com/dualwrite/dualwrite/internal/wire"
)

func TestKeyText(t *testing.T) {
	t.Parallel()
	cases := []struct{ key, want string }{
		{`[{"t":"s","v":"usmf"},{"t":"s","v":"C00012"}]`, "usmf / C00012"},
		{`[{"t":"i","v":"42"}]`, "42"},
		{`[{"t":"s","v":"a"},null]`, "a / NULL"},
		{`[{"t":"x","v":"AQL/"}]`, "0x0102ff"},
		{`[{"t":"t","v":"2026-12-04T10:00:00Z"},{"t":"d","v":"1.50"}]`, "2026-12-04T10:00:00Z / 1.50"},
		{`not json`, "not json"},
		{`{"sku":"A-1"}`, `{"sku":"A-1"}`},
		{`[]`, `[]`},
	}
	for _, c := range cases {
		if got := wire.KeyText(c.key); got != c.want {
			t.Errorf("KeyText(%s) = %q, want %q", c.key, got, c.want)
		}
	}
}

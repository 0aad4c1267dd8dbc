package pgrepl

import "testing"

func TestCopyTextRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there", "new\nline\r\n", `back\slash \N`, "😀 ünï"} {
		esc := AppendCopyText(nil, s)
		for _, c := range esc {
			if c == '\t' || c == '\n' || c == '\r' {
				t.Errorf("%q escaped to %q, which still holds a separator", s, esc)
			}
		}
		if got := string(UnescapeCopyText(nil, esc)); got != s {
			t.Errorf("round trip of %q gave %q (escaped %q)", s, got, esc)
		}
		if b := AppendCopyText([]byte("x"), []byte(s)); string(b) != "x"+string(esc) {
			t.Errorf("[]byte form %q differs from the string form %q", b, esc)
		}
	}
	if got := string(UnescapeCopyText(nil, []byte(`a\bb\fc\vd`))); got != "a\bb\fc\vd" {
		t.Errorf("control escapes read as %q", got)
	}
}

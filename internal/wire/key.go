package wire

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// KeySeparator joins the values of a composite key for people.
const KeySeparator = " / "

// KeyText renders a stored integration key for people: the values in key
// order joined by " / ", as dual-write shows them ("usmf / C00012"). A key
// it cannot read comes back unchanged, so nothing is ever hidden.
//
// The stored form is a JSON array of tagged values ({"t":"s","v":"C00012"},
// null for NULL) as internal/change encodes them.
func KeyText(key string) string {
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(key), &parts); err != nil || len(parts) == 0 {
		return key
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		if string(p) == "null" {
			out[i] = "NULL"
			continue
		}
		var tv struct {
			T string `json:"t"`
			V string `json:"v"`
		}
		if err := json.Unmarshal(p, &tv); err != nil || tv.T == "" {
			return key
		}
		if tv.T == "x" {
			if b, err := base64.StdEncoding.DecodeString(tv.V); err == nil {
				out[i] = "0x" + hexOf(b)
				continue
			}
		}
		out[i] = tv.V
	}
	return strings.Join(out, KeySeparator)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

package queue

import (
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
)

// escape turns a map or side name into a token that is valid both in a
// JetStream stream name and in a NATS subject. ASCII letters, digits and
// '-' are kept; every other byte becomes '_' and two hex digits. Because
// '_' itself is always escaped, the mapping is injective: two different
// names never share a stream.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	return b.String()
}

// validPrefix reports whether p can start stream names and subjects. '_'
// is refused so that the first '_' of a stream name always ends the prefix.
func validPrefix(p string) bool {
	if p == "" || len(p) > 32 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// streamName is the JetStream stream that holds one map's queue.
func streamName(prefix, mapName string) string {
	return prefix + "_" + escape(mapName)
}

// mapSubjects is the subject filter of one map's stream: one subject per
// source side, so that the last entry of a direction can be found cheaply.
func mapSubjects(prefix, mapName string) string {
	return prefix + ".q." + escape(mapName) + ".*"
}

// subject is where the entries of one map and direction are published.
func subject(prefix, mapName, direction string) string {
	return prefix + ".q." + escape(mapName) + "." + escape(direction)
}

// allSubjects matches every queue stream under prefix.
func allSubjects(prefix string) string {
	return prefix + ".q.>"
}

// msgID is the JetStream de-duplication id of an entry: the same source
// transaction (same map, direction and position) always gets the same id.
func msgID(mapName, direction string, p change.Position) string {
	return fmt.Sprintf("%s/%s/%d.%d/%s", escape(mapName), escape(direction), p.LSN, p.Sub, escape(p.Token))
}

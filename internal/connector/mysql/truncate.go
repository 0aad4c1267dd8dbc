package mysql

import (
	"strings"
)

// truncatedTable parses a TRUNCATE statement as the binary log records it
// (a QUERY event: the statement text as the client sent it, and the
// session's default schema) and returns the schema and table it empties.
// ok is false for any other statement. It accepts comments anywhere
// between tokens, the optional TABLE keyword, backquoted and
// schema-qualified names, and ignores what follows the name (WAIT n,
// NOWAIT, a semicolon).
func truncatedTable(sql, defaultSchema string) (schema, table string, ok bool) {
	p := &sqlScanner{s: sql}
	if !strings.EqualFold(p.word(), "truncate") {
		return "", "", false
	}
	save := p.i
	if w := p.word(); !strings.EqualFold(w, "table") {
		p.i = save
	}
	first, ok := p.ident()
	if !ok {
		return "", "", false
	}
	save = p.i
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		second, ok := p.ident()
		if !ok {
			return "", "", false
		}
		return first, second, true
	}
	p.i = save
	if defaultSchema == "" {
		return "", "", false
	}
	return defaultSchema, first, true
}

// statementTable parses a DML statement the binary log holds as text
// (statement or mixed binlog_format) and returns the table it writes:
// INSERT/REPLACE [LOW_PRIORITY|DELAYED|HIGH_PRIORITY] [IGNORE] [INTO] t,
// UPDATE [LOW_PRIORITY] [IGNORE] t, DELETE [LOW_PRIORITY] [QUICK] [IGNORE]
// FROM t. ok is false for anything else (multi-table forms included).
func statementTable(sql, defaultSchema string) (schema, table string, ok bool) {
	p := &sqlScanner{s: sql}
	verb := strings.ToUpper(p.word())
	switch verb {
	case "INSERT", "REPLACE", "UPDATE", "DELETE":
	default:
		return "", "", false
	}
	for {
		save := p.i
		w := strings.ToUpper(p.word())
		switch w {
		case "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "QUICK":
			continue
		case "INTO":
			if verb == "INSERT" || verb == "REPLACE" {
				continue
			}
		case "FROM":
			if verb == "DELETE" {
				continue
			}
		}
		p.i = save
		break
	}
	first, ok := p.ident()
	if !ok {
		return "", "", false
	}
	save := p.i
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		second, ok := p.ident()
		if !ok {
			return "", "", false
		}
		return first, second, true
	}
	p.i = save
	if defaultSchema == "" {
		return "", "", false
	}
	return defaultSchema, first, true
}

// sqlScanner walks a statement's tokens, skipping whitespace and comments.
type sqlScanner struct {
	s string
	i int
}

// skip moves past whitespace and comments (/* */, -- and # to the end of
// the line).
func (p *sqlScanner) skip() {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			p.i++
		case strings.HasPrefix(p.s[p.i:], "/*"):
			end := strings.Index(p.s[p.i+2:], "*/")
			if end < 0 {
				p.i = len(p.s)
				return
			}
			p.i += 2 + end + 2
		case c == '#' || (strings.HasPrefix(p.s[p.i:], "--") && (p.i+2 == len(p.s) || p.s[p.i+2] == ' ' || p.s[p.i+2] == '\t' || p.s[p.i+2] == '\n' || p.s[p.i+2] == '\r')):
			end := strings.IndexByte(p.s[p.i:], '\n')
			if end < 0 {
				p.i = len(p.s)
				return
			}
			p.i += end + 1
		default:
			return
		}
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// word returns the next bare word, or "" when the next token is not one.
func (p *sqlScanner) word() string {
	p.skip()
	start := p.i
	for p.i < len(p.s) && isWordByte(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// ident returns the next identifier: a bare word or a backquoted name
// (a doubled backquote stands for one).
func (p *sqlScanner) ident() (string, bool) {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == '`' {
		var b strings.Builder
		for j := p.i + 1; j < len(p.s); j++ {
			if p.s[j] != '`' {
				b.WriteByte(p.s[j])
				continue
			}
			if j+1 < len(p.s) && p.s[j+1] == '`' {
				b.WriteByte('`')
				j++
				continue
			}
			p.i = j + 1
			return b.String(), b.Len() > 0
		}
		return "", false
	}
	w := p.word()
	return w, w != ""
}

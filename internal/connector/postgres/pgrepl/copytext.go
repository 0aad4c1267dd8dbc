package pgrepl

// COPY's text format: one line per row, columns separated by tabs, \N for
// NULL, and backslash escapes for the characters that would break that
// layout (PostgreSQL documentation, COPY, "Text Format").

// AppendCopyText appends v to dst escaped for COPY's text format:
// backslash, tab, newline and carriage return become \\, \t, \n and \r.
func AppendCopyText[T ~string | ~[]byte](dst []byte, v T) []byte {
	start := 0
	for i := 0; i < len(v); i++ {
		var esc byte
		switch v[i] {
		case '\\':
			esc = '\\'
		case '\t':
			esc = 't'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		default:
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	return append(dst, v[start:]...)
}

// UnescapeCopyText appends to dst the value of one field of COPY's text
// output (not \N, which the caller reads as NULL).
func UnescapeCopyText(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		ch := src[i]
		if ch != '\\' || i+1 == len(src) {
			dst = append(dst, ch)
			continue
		}
		i++
		switch src[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		default:
			dst = append(dst, src[i])
		}
	}
	return dst
}

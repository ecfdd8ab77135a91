// Package headerlist reads comma-separated HTTP header values (RFC 9110
// §5.6.1: Vary, Cache-Control, Accept-Encoding,
// Access-Control-Request-Headers, ...) and compares their tokens without
// allocating. Plugins share it so that every list is split and trimmed the
// same way.
package headerlist

import "bytes"

// Next splits the first element off the list v and trims the optional
// white space around it: Next([]byte(" gzip , br")) is "gzip", " br".
// Empty elements come back empty; a caller skips them.
func Next(v []byte) (elem, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return TrimOWS(v[:i]), v[i+1:]
	}
	return TrimOWS(v), nil
}

// TrimOWS trims spaces and tabs on both sides of b.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualLower reports whether b equals lower, a lower-case ASCII string,
// ignoring b's case.
func EqualLower(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Has reports whether any of the header lines values lists the token
// lower (lower-case ASCII), compared case-insensitively. An element with
// an argument (max-age=0) is compared by its name.
func Has(values [][]byte, lower string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var elem []byte
			elem, v = Next(v)
			if i := bytes.IndexByte(elem, '='); i >= 0 {
				elem = TrimOWS(elem[:i])
			}
			if EqualLower(elem, lower) {
				return true
			}
		}
	}
	return false
}

package router

import "errors"

// MaxPathLength is the longest raw request path, in bytes, that NormalizePath
// accepts.
const MaxPathLength = 8 << 10

// ErrBadPath is returned by NormalizePath for a path that is not absolute, is
// longer than MaxPathLength, holds an invalid percent escape, or decodes to a
// NUL or another ASCII control byte.
var ErrBadPath = errors.New("router: bad request path")

// NormalizePath appends the normalised form of raw to dst and returns the
// extended buffer; callers normally pass a reused buffer as buf[:0].
//
// raw is the path of the request target as received (the bytes before '?',
// still percent-encoded). Every percent escape is decoded, %2F and %2E
// included, so the result is the decoded path; repeated slashes are collapsed
// and "." and ".." segments are resolved, never climbing above the root. The
// result keeps a trailing slash when the last segment is empty, "." or "..",
// as RFC 3986 remove_dot_segments does ("/a/b/" and "/a/b/." give "/a/b/").
// A backslash is an ordinary byte, not a separator.
//
// On error dst is returned at its original length together with ErrBadPath.
// NormalizePath does not allocate when dst has room for len(raw) more bytes.
// dst may be raw[:0] to normalise in place, because the write position never
// passes the read position; raw then holds partial output after an error.
func NormalizePath(dst, raw []byte) ([]byte, error) {
	if len(raw) == 0 || raw[0] != '/' || len(raw) > MaxPathLength {
		return dst, ErrBadPath
	}
	start := len(dst)
	out := append(dst, '/')
	// seg is the index in out where the segment being read begins, always
	// just after a '/'.
	seg := len(out)
	for i := 1; i < len(raw); {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return dst, ErrBadPath
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return dst, ErrBadPath
			}
			c = hi<<4 | lo
			i += 3
		} else {
			i++
		}
		if c < 0x20 || c == 0x7f {
			return dst, ErrBadPath
		}
		if c != '/' {
			out = append(out, c)
			continue
		}
		out = closeSegment(out, start, seg)
		if out[len(out)-1] != '/' {
			out = append(out, '/')
		}
		seg = len(out)
	}
	return closeSegment(out, start, seg), nil
}

// closeSegment resolves the segment out[seg:], which has just ended. An empty
// segment or "." is dropped, ".." is dropped together with the segment before
// it, and any other segment is kept. out[start:seg] is the path so far and
// always ends with '/'.
func closeSegment(out []byte, start, seg int) []byte {
	switch len(out) - seg {
	case 1:
		if out[seg] == '.' {
			return out[:seg]
		}
	case 2:
		if out[seg] == '.' && out[seg+1] == '.' {
			// out[start:seg] is "/" or "/p/.../q/"; drop "q/" unless at the root.
			parent := seg - 1
			if parent == start {
				return out[:seg]
			}
			for parent > start && out[parent-1] != '/' {
				parent--
			}
			return out[:parent]
		}
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pathSafe marks the bytes AppendEscapedPath copies unchanged: the RFC 3986
// pchar set and '/', minus ';'. A raw ';' starts a path parameter for some
// servers (Tomcat, Jetty), which would let "/public/..;/admin" reach a path
// the gateway never routed; escaped as %3B it stays part of the segment.
var pathSafe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,=:@/" {
		t[c] = true
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// AppendEscapedPath appends p, a path returned by NormalizePath, to dst in the
// form to send upstream and returns the extended buffer. Bytes outside the
// RFC 3986 path character set (controls, space, '"', '#', '%', '<', '>', '?',
// '[', '\\', ']', '^', '`', '{', '|', '}', DEL and every non-ASCII byte) and
// ';' are percent-encoded with upper-case hex, so decoding the result gives p
// back byte for byte and NormalizePath maps it to p again.
func AppendEscapedPath(dst, p []byte) []byte {
	for _, c := range p {
		if pathSafe[c] {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
	}
	return dst
}

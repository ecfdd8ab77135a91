package router

import "strings"

// methodSet is a set of the standard methods, one bit each, in the
// alphabetical order of methodNames so that an Allow list built by walking
// the bits is sorted.
type methodSet uint16

// methodNames are the methods a Route may list (RFC 9110 and RFC 5789).
var methodNames = [...]string{
	"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
}

const (
	methodGet  methodSet = 1 << 2
	methodHead methodSet = 1 << 3
	allMethods methodSet = 1<<len(methodNames) - 1
)

// methodBit returns the bit of a standard method, or 0 for any other token.
// The switch on string(m) does not allocate.
func methodBit(m []byte) methodSet {
	switch string(m) {
	case "GET":
		return methodGet
	case "HEAD":
		return methodHead
	case "POST":
		return 1 << 6
	case "PUT":
		return 1 << 7
	case "DELETE":
		return 1 << 1
	case "PATCH":
		return 1 << 5
	case "OPTIONS":
		return 1 << 4
	case "CONNECT":
		return 1 << 0
	case "TRACE":
		return 1 << 8
	}
	return 0
}

// withHead adds HEAD to a set that holds GET: HEAD is allowed wherever GET is.
func (s methodSet) withHead() methodSet {
	if s&methodGet != 0 {
		s |= methodHead
	}
	return s
}

// String returns the set as an Allow header value, e.g. "GET, HEAD, POST".
func (s methodSet) String() string {
	var b strings.Builder
	for i, name := range methodNames {
		if s&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
	}
	return b.String()
}

// allowValues holds the Allow header value of every method set, built once so
// that a 405 never formats anything per request.
var allowValues = func() (t [allMethods + 1][]byte) {
	for s := range t {
		t[s] = []byte(methodSet(s).String())
	}
	return t
}()

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

package router

import (
	"fmt"
	"net/textproto"
	"strings"
)

// Header is one header condition of a route: the request must carry the
// header Name (compared case-insensitively) with exactly Value.
type Header struct {
	Name  string
	Value string
}

// Headers gives Match the request headers. Peek returns the value of the
// first header named name (case-insensitively), or nil when there is none;
// *fasthttp.RequestHeader implements it.
type Headers interface {
	Peek(name string) []byte
}

// unroutableHeaders are removed or consumed before routing (hop-by-hop
// headers) or matched by other fields, so a condition on them could never
// hold or would duplicate match.host.
var unroutableHeaders = map[string]string{
	"Host":              "match the host with match.host",
	"Connection":        "it is a hop-by-hop header, removed before routing",
	"Keep-Alive":        "it is a hop-by-hop header, removed before routing",
	"Proxy-Connection":  "it is a hop-by-hop header, removed before routing",
	"Te":                "it is a hop-by-hop header, removed before routing",
	"Trailer":           "it is a hop-by-hop header, removed before routing",
	"Transfer-Encoding": "it is a hop-by-hop header, removed before routing",
	"Upgrade":           "it is a hop-by-hop header, removed before routing",
	"Content-Length":    "it describes the body, not the request's destination",
}

// checkHeader returns the canonical name of a header condition, or a message
// saying what is wrong with it.
func checkHeader(h Header) (string, string) {
	if !isToken(h.Name) {
		return "", fmt.Sprintf("%q is not a valid header name", h.Name)
	}
	canon := textproto.CanonicalMIMEHeaderKey(h.Name)
	if why, ok := unroutableHeaders[canon]; ok {
		return "", fmt.Sprintf("cannot match on %s: %s", canon, why)
	}
	if h.Value == "" {
		return "", "the value must not be empty (a condition compares the exact value of a header that is present)"
	}
	for i := 0; i < len(h.Value); i++ {
		if c := h.Value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", fmt.Sprintf("the value must not contain control characters, got %q", h.Value)
		}
	}
	if strings.TrimSpace(h.Value) != h.Value {
		return "", fmt.Sprintf("the value must not start or end with white space (header values are read without it), got %q", h.Value)
	}
	return canon, ""
}

// compatible reports whether one request can satisfy both header condition
// sets: no header is required with two different values.
func compatible(a, b []Header) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Name == y.Name && x.Value != y.Value {
				return false
			}
		}
	}
	return true
}

// headersMatch reports whether every condition holds for h.
func headersMatch(conds []Header, h Headers) bool {
	if len(conds) == 0 {
		return true
	}
	if h == nil {
		return false
	}
	for i := range conds {
		if string(h.Peek(conds[i].Name)) != conds[i].Value {
			return false
		}
	}
	return true
}

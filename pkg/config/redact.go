package config

import (
	"net/url"
	"strings"
)

// redacted replaces what RedactURL removes.
const redacted = "redacted"

// RedactURL returns raw fit for a log line or an error message: the
// userinfo ("user:password@") and the query string, which commonly carry
// credentials (basic auth, ?api_key=...), become "redacted", and the
// fragment is dropped. Scheme, host, port and path stay, so the operator
// can still tell which URL is meant. It also takes the host:port forms of
// Redis addresses. A string that does not parse as a URL is cut by hand,
// erring on the side of removing too much: everything up to its last '@'
// counts as userinfo.
//
// Every URL or address the configuration holds goes through RedactURL
// before it is printed.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" && u.Opaque == "" {
		if u.User != nil {
			u.User = url.User(redacted)
		}
		if u.RawQuery != "" || u.ForceQuery {
			u.RawQuery, u.ForceQuery = redacted, false
		}
		u.Fragment, u.RawFragment = "", ""
		return u.String()
	}
	s := raw
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	// A password may hold '/', '?' or '#' unescaped: the userinfo is
	// taken to end at the last '@' anywhere.
	if at := strings.LastIndexByte(s[start:], '@'); at >= 0 {
		s = s[:start] + redacted + "@" + s[start+at+1:]
		start += len(redacted) + 1
	}
	if i := strings.IndexByte(s[start:], '#'); i >= 0 {
		s = s[:start+i]
	}
	if i := strings.IndexByte(s[start:], '?'); i >= 0 {
		s = s[:start+i] + "?" + redacted
	}
	return s
}

// RedactURLs applies RedactURL to each of list.
func RedactURLs(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = RedactURL(s)
	}
	return out
}
